// Subscribes to referralChanged with the graphql-ws client over WebSocket
// and prints one JSON line per event ({"id", "referralId", "type"}), or
// {"error": …} and exits 1. It stops after COUNT events.
//
//   node subscribe.mjs ws://127.0.0.1:PORT/query COUNT [AFTER_ID]
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, count, after] = process.argv.slice(2);
if (!url || !count) {
  console.error('usage: node subscribe.mjs ws://127.0.0.1:PORT/query COUNT [AFTER_ID]');
  process.exit(2);
}
const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
let seen = 0;
const fail = (error) => {
  console.log(JSON.stringify({ error }));
  process.exit(1);
};
client.subscribe(
  {
    query: 'subscription ($after: ID) { referralChanged(after: $after) { id type referralId } }',
    variables: { after: after ?? null },
  },
  {
    next: (result) => {
      if (result.errors) fail(result.errors);
      console.log(JSON.stringify(result.data.referralChanged));
      if (++seen === Number(count)) {
        client.dispose();
        process.exit(0);
      }
    },
    error: fail,
    complete: () => fail('the subscription completed after ' + seen + ' events'),
  },
);
