// Connects to the server over WebSocket, with nothing to subscribe to,
// and prints "ping" for each keep-alive the server sends; exits 0 after
// COUNT, or prints {"error": …} and exits 1 if the connection ends first.
//
//   node ping.mjs graphql-transport-ws ws://127.0.0.1:PORT/query COUNT
//   node ping.mjs graphql-ws ws://127.0.0.1:PORT/query COUNT
//
// graphql-transport-ws is spoken by the graphql-ws client, which answers
// each "ping" with a "pong" and sends no pings of its own here; the legacy
// graphql-ws protocol (subscriptions-transport-ws), whose keep-alive is
// "ka", by the ws library directly.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [protocol, url, count] = process.argv.slice(2);
if (!protocol || !url || !count) {
  console.error('usage: node ping.mjs graphql-transport-ws|graphql-ws ws://127.0.0.1:PORT/query COUNT');
  process.exit(2);
}
let seen = 0;
const pinged = () => {
  console.log('ping');
  if (++seen === Number(count)) process.exit(0);
};
const fail = (error) => {
  console.log(JSON.stringify({ error: String(error) }));
  process.exit(1);
};
if (protocol === 'graphql-transport-ws') {
  createClient({
    url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, keepAlive: 0,
    on: {
      ping: (received) => { if (received) pinged(); },
      closed: (event) => fail(`closed ${event.code} ${event.reason}`),
      error: fail,
    },
  });
} else {
  const ws = new WebSocket(url, 'graphql-ws');
  ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} })));
  ws.on('message', (data) => { if (JSON.parse(data).type === 'ka') pinged(); });
  ws.on('close', (code, reason) => fail(`closed ${code} ${reason}`));
  ws.on('error', fail);
}
