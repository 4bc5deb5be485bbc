#!/usr/bin/env node
// The `ebb` command. Runs the compiled build (made by `npm install` through the `prepare` script).
import { main } from '../dist/main/cli.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`ebb: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
