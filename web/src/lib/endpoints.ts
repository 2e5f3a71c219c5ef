// Where the pages talk to: the WebSocket transports of the HTTP port that served them
// (docs/protocol.md, "WebSocket transports"), same host and scheme.
export function wsUrl(path: '/ws/rpc' | '/ws/live'): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}
