/**
 * ebb's data plane as a peers.sh candidate: `node --import tsx bench/ebb-candidate.ts PORT BACKEND_PORT`
 * listens on 127.0.0.1:PORT and forwards to 127.0.0.1:BACKEND_PORT with every feature on.
 */
import { HttpDataPlane } from '../src/dataplane/http-data-plane.ts';
import { singleGroupSnapshot } from './snapshot.ts';

const port = Number(process.argv[2] ?? 18090);
const backendPort = Number(process.argv[3] ?? 18081);
const dp = new HttpDataPlane({ id: 'bench', log: (l) => process.stderr.write(`${JSON.stringify(l)}\n`) });
const r = await dp.apply(singleGroupSnapshot(port, [backendPort]));
if (r.listenerErrors.length > 0) {
  console.error(r.listenerErrors);
  process.exit(1);
}
console.log(`ebb listening ${port} -> ${backendPort}`);
const stop = (): void => {
  void dp.close(1000).then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
