// Checks a server's answer to the standard introspection query: no errors,
// graphql-js's buildClientSchema accepts it as a valid schema, and that
// schema is the one schema.graphqls declares, type by type and field by
// field, descriptions included.
//   node check.mjs result.json schema.graphqls
import { readFileSync } from 'node:fs';
import {
  GraphQLSchema, buildClientSchema, buildSchema, assertValidSchema, lexicographicSortSchema, printSchema,
} from 'graphql';

const [resultPath, sdlPath] = process.argv.slice(2);
if (!resultPath || !sdlPath) {
  console.error('usage: node check.mjs result.json schema.graphqls');
  process.exit(2);
}
const result = JSON.parse(readFileSync(resultPath, 'utf8'));
if (result.errors) {
  console.error('the introspection query was answered with errors:', JSON.stringify(result.errors));
  process.exit(1);
}
const served = buildClientSchema(result.data);
assertValidSchema(served);
const declared = buildSchema(readFileSync(sdlPath, 'utf8'));
const config = served.toConfig();
const servedWithoutDefer = new GraphQLSchema({ ...config, directives: config.directives.filter((d) => d.name !== 'defer') });
const print = (schema) => printSchema(lexicographicSortSchema(schema));
if (print(servedWithoutDefer) !== print(declared)) {
  const a = print(servedWithoutDefer).split('\n');
  const b = print(declared).split('\n');
  const at = a.findIndex((line, i) => line !== b[i]);
  console.error(`the introspected schema differs from ${sdlPath} at line ${at + 1}:\n  served:   ${a[at]}\n  declared: ${b[at]}`);
  process.exit(1);
}
console.log(`standard introspection: a valid schema of ${Object.keys(served.getTypeMap()).length} types, the one ${sdlPath} declares`);
