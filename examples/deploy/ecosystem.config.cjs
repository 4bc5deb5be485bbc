/* global __dirname */
/**
 * The same app under PM2, set up as PM2's documentation recommends for a graceful reload
 * (https://pm2.keymetrics.io/docs/usage/signals-clean-restart/): cluster mode, so the workers share
 * one port and `pm2 reload` replaces them one after another; `wait_ready`, so an old worker is stopped
 * only once its replacement has sent "ready"; SIGINT handled by the app (the default kill signal),
 * with `kill_timeout` long enough for in-flight requests to finish.
 *
 *   APP_PORT=3000 npx pm2 start examples/deploy/ecosystem.config.cjs
 *   APP_VERSION=2 npx pm2 reload examples/deploy/ecosystem.config.cjs --update-env
 *
 * APP_PORT, APP_VERSION, APP_DELAY_MS and APP_DRAIN_MS (see app.mjs) are read from the environment
 * of the pm2 command.
 */
module.exports = {
  apps: [
    {
      name: 'deploy-app',
      script: `${__dirname}/app.mjs`,
      exec_mode: 'cluster',
      instances: Number(process.env.APP_INSTANCES ?? 3),
      wait_ready: true,
      listen_timeout: 10_000,
      kill_timeout: 10_000,
      env: {
        APP_PORT: process.env.APP_PORT ?? '3000',
        APP_VERSION: process.env.APP_VERSION ?? '1',
        APP_DELAY_MS: process.env.APP_DELAY_MS ?? '20',
        // 0: the app closes idle keep-alive connections when told to stop, as server.close() does.
        APP_DRAIN_MS: process.env.APP_DRAIN_MS ?? '0',
      },
    },
  ],
};
