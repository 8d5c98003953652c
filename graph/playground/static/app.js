// Starts GraphiQL with the server's own settings (/playground/config.json):
// the example tabs, the explorer, subscriptions over the WebSocket endpoint,
// and, when the server requires tokens, the headers editor open with a
// notice saying how to send one. Loaded as a file: the page allows no
// inline script.
(async function main() {
  const root = document.getElementById('graphiql');
  let config;
  try {
    const res = await fetch('/playground/config.json', { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    config = await res.json();
  } catch (err) {
    root.textContent = `Could not load the playground's settings: ${err.message}`;
    return;
  }

  const notices = [];
  if (config.tokensRequired) {
    notices.push('This server requires a token. Put yours in the Headers editor below the query as ' +
      '{"Authorization": "Bearer <token>"}: it is sent with every request, and in connection_init for subscriptions.' +
      (config.introspection ? ' Then press the re-fetch button (↻, bottom left) to load the docs.' : ''));
  }
  if (config.persistedOnly) {
    notices.push('This server runs registered operations only (--persisted-only): the example tabs, ' +
      'typed operations and the docs are refused unless they are registered (--persisted-queries).');
  } else if (!config.introspection) {
    notices.push('Introspection is off on this server (--introspection), so the docs, the explorer and ' +
      'autocompletion are not available; queries still run.');
  }
  if (notices.length > 0) {
    const notice = document.getElementById('notice');
    notice.textContent = notices.join(' ');
    notice.hidden = false;
  }

  const ws = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const fetcher = GraphiQL.createFetcher({
    url: location.origin + config.endpoint,
    // graphql-transport-ws; the headers of the editor become the
    // connection_init payload, where the server reads the token.
    subscriptionUrl: `${ws}//${location.host}${config.endpoint}`,
  });
  const headers = config.tokensRequired ? JSON.stringify({ Authorization: 'Bearer <token>' }, null, 2) : undefined;
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, {
    fetcher,
    defaultTabs: config.tabs.map((tab) => ({ ...tab, headers })),
    defaultHeaders: headers,
    defaultEditorToolsVisibility: config.tokensRequired ? 'headers' : 'variables',
    isHeadersEditorEnabled: true,
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    inputValueDeprecation: true,
    schemaDescription: true,
  }));
})();
