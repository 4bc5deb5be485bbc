// node-floor: the least a Node proxy can spend relaying a connection, as a baseline for ebb's figures
// (bench/protocols.sh, npm run bench). Through Node's stream-handle layer (process.binding('stream_wrap'),
// as ebb's TCP flows use it), each socket's handle reads into a 4 KiB buffer of its own and each read is
// written straight to the other socket's handle; a write the kernel does not take at once stops the
// reads until it completes. No parsing, no bookkeeping, no allocation per read: what Node itself costs in
// CPU per read and write, and in memory for the connections it holds.
// Usage: node bench/node-floor.cjs PORT BACKEND_PORT (both on 127.0.0.1)
const net = require('node:net');
const { Buffer } = require('node:buffer');
const { WriteWrap, streamBaseState: state, kReadBytesOrError: kRead, kLastWriteWasAsync: kAsync } = process.binding('stream_wrap');
const [port, backend] = process.argv.slice(2).map(Number);
function wire(from, to) {
  const h = from._handle, out = to._handle;
  let buf = Buffer.allocUnsafeSlow(4096), view = buf, spare = new WriteWrap();
  h.useUserBuffer(buf);
  h.onread = function () {
    const n = state[kRead];
    if (n <= 0) { from.destroy(); to.destroy(); return; }
    if (view.length !== n) view = buf.subarray(0, n);
    const w = spare;
    if (out.writeBuffer(w, view) !== 0) { from.destroy(); to.destroy(); return; }
    if (state[kAsync] === 0) return;
    // The write holds the buffer: stop reading until it completes, then read into a new one.
    spare = new WriteWrap();
    w.buffer = buf;
    h.readStop();
    w.oncomplete = () => { buf = view = Buffer.allocUnsafeSlow(4096); h.useUserBuffer(buf); h.readStart(); };
  };
  h.readStart();
}
net.createServer({ noDelay: true, pauseOnConnect: true }, (c) => {
  const u = net.connect({ port: backend, host: '127.0.0.1', noDelay: true });
  u.pause();
  u.on('connect', () => { wire(c, u); wire(u, c); });
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  c.on('close', () => u.destroy()); u.on('close', () => c.destroy());
}).listen(port, '127.0.0.1');
