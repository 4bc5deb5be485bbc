#!/usr/bin/env node
// The `ebb` command. Runs the compiled build (made by `npm install` through the `prepare` script).
import { restartWithCap } from '../dist/shared/young-generation.js';

// `ebb serve` starts node again in this process with V8's young generation capped, where that lowers
// it (src/shared/young-generation.ts); before the rest of ebb is loaded, which that would discard.
if (process.argv[2] === 'serve') restartWithCap();
const { main } = await import('../dist/main/cli.js');

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`ebb: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
