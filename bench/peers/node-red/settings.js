// Node-RED for the benchmark (bench/peers.py): the flow in flows.json, no editor, no log per request.
// The user directory (credentials, runtime files) comes from the command line, in a temporary folder.
module.exports = {
  flowFile: process.env.BENCH_NODE_RED_FLOWS,
  uiHost: "127.0.0.1",
  uiPort: Number(process.env.BENCH_NODE_RED_PORT),
  httpAdminRoot: false,
  credentialSecret: false,
  logging: { console: { level: "warn", metrics: false, audit: false } },
  editorTheme: { tours: false },
  telemetry: { enabled: false },
  diagnostics: { enabled: false },
  runtimeState: { enabled: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false } },
  functionExternalModules: false,
};
