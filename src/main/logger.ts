/** ebb's log: one JSON object per line on stdout, with a time and a level. */
export type LogEntry = Record<string, unknown>;
export type Log = (entry: LogEntry) => void;

export function createLog(stream: NodeJS.WritableStream = process.stdout): Log {
  return (entry) => {
    stream.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', ...entry })}\n`);
  };
}
