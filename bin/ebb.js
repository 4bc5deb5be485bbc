#!/usr/bin/env -S node --max-semi-space-size=16
// The `ebb` command. Runs the compiled build (made by `npm install` through the `prepare` script).
// The node option above caps V8's young generation at Node 20's size on every Node (src/shared/young-generation.ts).
import { main } from '../dist/main/cli.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`ebb: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
