/**
 * A throwaway self-signed certificate for `localhost` / 127.0.0.1 (P-256, two days), made with
 * openssl for tests that run SIP over TLS. Returns the PEM file paths in `dir`.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export function makeTestCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', key, '-out', cert],
    { stdio: 'ignore' },
  );
  return { cert, key };
}
