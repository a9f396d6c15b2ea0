// node-oidc-provider for `python3 dev.py bench` (bench/README.md): the client-credentials token
// endpoint, JWT access tokens (RFC 9068) signed RS256, as the bench's authserver row issues them.
//
//   PORT=... WEB_CONCURRENCY=2 BENCH_CLIENT_ID=... BENCH_CLIENT_SECRET=... node server.mjs
//
// The primary makes one RSA 2048 signing key per run and forks WEB_CONCURRENCY workers (as
// gunicorn runs authserver's), each a Provider with that key on 127.0.0.1:PORT; SIGTERM stops
// the workers, then the primary.  Nothing is logged per request.
import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import process from 'node:process';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';
const SCOPE = 'invoices:read invoices:write';
const AUDIENCE = 'https://api.example.com';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`server.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

function primary() {
  const workers = Number.parseInt(process.env.WEB_CONCURRENCY || '2', 10);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = {
    ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig',
  };
  const env = { BENCH_JWK: JSON.stringify(jwk), BENCH_COOKIE_KEY: randomBytes(32).toString('hex') };
  let stopping = false;
  for (let i = 0; i < workers; i += 1) cluster.fork(env);
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers).length === 0) process.exit(0);
      return;
    }
    // As gunicorn does; the bench sees the new PID and warns that the run's CPU figures are low.
    console.error(`worker ${worker.process.pid} exited (${signal || code}); starting another`);
    cluster.fork(env);
  });
  process.on('SIGTERM', () => {
    stopping = true;
    const running = Object.values(cluster.workers);
    if (running.length === 0) process.exit(0);
    for (const worker of running) worker.kill('SIGTERM');
  });
}

function worker() {
  const port = required('PORT');
  const provider = new Provider(`http://${HOST}:${port}`, {
    clients: [{
      client_id: required('BENCH_CLIENT_ID'),
      client_secret: required('BENCH_CLIENT_SECRET'),
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPE,
    }],
    jwks: { keys: [JSON.parse(required('BENCH_JWK'))] },
    scopes: SCOPE.split(' '),
    cookies: { keys: [required('BENCH_COOKIE_KEY')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        getResourceServerInfo: () => ({
          scope: SCOPE,
          audience: AUDIENCE,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
        useGrantedResource: () => true,
      },
    },
  });
  // Koa's own error printing; oidc-provider logs only through `debug`, off unless DEBUG is set.
  provider.silent = true;
  provider.listen(Number.parseInt(port, 10), HOST);
}

if (cluster.isPrimary) primary(); else worker();
