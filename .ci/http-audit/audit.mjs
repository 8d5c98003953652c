// Runs the graphql-http package's GraphQL-over-HTTP audits (MUST, SHOULD
// and MAY) against the server at the URL given, prints each one that is not
// ok, and exits non-zero when any is not.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs http://127.0.0.1:PORT/query');
  process.exit(2);
}
const results = await auditServer({ url });
let notOK = 0;
for (const r of results) {
  if (r.status === 'ok') continue;
  notOK++;
  console.log(`${r.status}: ${r.name}\n  ${r.reason}`);
}
console.log(`graphql-http audit: ${results.length - notOK} passed, ${notOK} failed`);
process.exit(notOK === 0 ? 0 : 1);
