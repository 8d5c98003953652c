// Fetches the GraphiQL page's third-party files pinned in vendor.json from
// the npm registry, checks each package's tarball against its sha512
// integrity, and writes the files and the package's LICENSE to
// vendor/<name>@<version>/, replacing what was there. A package without a
// pinned integrity gets the registry's, written back to vendor.json. The
// registry is the one npm is configured with (`npm config get registry`).
// Needs Node.js 18 or later and npm:
//   node graph/playground/update-vendor.mjs
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const pinsPath = join(here, 'vendor.json');
const pins = JSON.parse(readFileSync(pinsPath, 'utf8'));
const vendor = join(here, 'vendor');
const registry = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim().replace(/\/$/, '');

async function get(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return res;
}

// untar returns the regular files of a tar archive by path.
function untar(buf) {
  const files = new Map();
  for (let at = 0; at + 512 <= buf.length;) {
    const header = buf.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const field = (from, to) => header.subarray(from, to).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(field(124, 136).trim() || '0', 8);
    const prefix = field(345, 500);
    const name = (prefix ? prefix + '/' : '') + field(0, 100);
    const type = field(156, 157);
    if (type === '0' || type === '') files.set(name, buf.subarray(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

const tarballs = new Map();
for (const pkg of pins.packages) {
  const meta = await (await get(`${registry}/${pkg.name.replace('/', '%2F')}/${pkg.version}`)).json();
  if (pkg.integrity && pkg.integrity !== meta.dist.integrity) {
    throw new Error(`${pkg.name}@${pkg.version}: the registry says ${meta.dist.integrity}, pinned is ${pkg.integrity}`);
  }
  const tgz = Buffer.from(await (await get(meta.dist.tarball)).arrayBuffer());
  const got = 'sha512-' + createHash('sha512').update(tgz).digest('base64');
  if (got !== meta.dist.integrity) {
    throw new Error(`${pkg.name}@${pkg.version}: the tarball's sha512 is ${got}, the registry's ${meta.dist.integrity}`);
  }
  pkg.integrity = got;
  tarballs.set(pkg.name, untar(gunzipSync(tgz)));
  console.log(`${pkg.name}@${pkg.version} ${got}`);
}

rmSync(vendor, { recursive: true, force: true });
for (const pkg of pins.packages) {
  const dir = join(vendor, `${pkg.name}@${pkg.version}`);
  mkdirSync(dir, { recursive: true });
  const files = tarballs.get(pkg.name);
  for (const f of pkg.files) {
    const content = files.get(`package/${f}`);
    if (!content) throw new Error(`${pkg.name}@${pkg.version} has no ${f}`);
    writeFileSync(join(dir, basename(f)), content);
  }
  const license = tarballs.get(pkg.licenseOf ?? pkg.name).get('package/LICENSE');
  if (!license) throw new Error(`${pkg.name}@${pkg.version} ships no LICENSE: name the package whose license it is in licenseOf`);
  writeFileSync(join(dir, 'LICENSE'), license);
}
writeFileSync(pinsPath, JSON.stringify(pins, null, 2) + '\n');
