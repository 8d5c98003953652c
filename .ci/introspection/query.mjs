// Prints graphql-js's standard introspection query with every option, the
// one GraphiQL, Apollo tooling and graphql-codegen send. graph/testdata/
// introspection.graphql is its output:
//   node .ci/introspection/query.mjs > graph/testdata/introspection.graphql
import { getIntrospectionQuery } from 'graphql';

process.stdout.write(getIntrospectionQuery({
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  oneOf: true,
}));
