'use strict';
// wsraw.js -- a WebSocket client with no library under it, for the hostile suite: raw TCP, so a
// test can send what no well-behaved client library would (bad opcodes, lying lengths, unmasked
// or fragmented frames, a close mid-frame), plus what an authenticated @dcl/rpc client needs:
// the signed auth chain (Keccak-256 and secp256k1 in plain BigInt arithmetic) and the protobuf
// frames, encoded and decoded by hand. Node.js built-ins only: the suite must not depend on the
// compat suite's node_modules.

const net = require('net');
const crypto = require('crypto');

// ---- Keccak-256 (the original padding 0x01, not NIST SHA3's 0x06)

const MASK64 = (1n << 64n) - 1n;
const RC = [
  0x0000000000000001n, 0x0000000000008082n, 0x800000000000808an, 0x8000000080008000n,
  0x000000000000808bn, 0x0000000080000001n, 0x8000000080008081n, 0x8000000000008009n,
  0x000000000000008an, 0x0000000000000088n, 0x0000000080008009n, 0x000000008000000an,
  0x000000008000808bn, 0x800000000000008bn, 0x8000000000008089n, 0x8000000000008003n,
  0x8000000000008002n, 0x8000000000000080n, 0x000000000000800an, 0x800000008000000an,
  0x8000000080008081n, 0x8000000000008080n, 0x0000000080000001n, 0x8000000080008008n,
];
const ROT = [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61,
  56, 14];

function rotl(x, n) {
  n = BigInt(n);
  return n === 0n ? x : ((x << n) | (x >> (64n - n))) & MASK64;
}

function keccakF(s) {
  for (let round = 0; round < 24; round++) {
    const c = [];
    for (let x = 0; x < 5; x++) c[x] = s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20];
    for (let x = 0; x < 5; x++) {
      const d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
      for (let y = 0; y < 25; y += 5) s[y + x] ^= d;
    }
    const b = new Array(25);
    for (let x = 0; x < 5; x++)
      for (let y = 0; y < 5; y++)
        b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(s[x + 5 * y], ROT[x + 5 * y]);
    for (let y = 0; y < 25; y += 5)
      for (let x = 0; x < 5; x++)
        s[y + x] = b[y + x] ^ (~b[y + ((x + 1) % 5)] & MASK64 & b[y + ((x + 2) % 5)]);
    s[0] ^= RC[round];
  }
}

function keccak256(data) {
  const rate = 136;
  const msg = Buffer.concat([Buffer.from(data), Buffer.alloc(rate - (data.length % rate))]);
  msg[data.length] ^= 0x01;
  msg[msg.length - 1] ^= 0x80;
  const s = new Array(25).fill(0n);
  for (let off = 0; off < msg.length; off += rate) {
    for (let i = 0; i < rate / 8; i++) s[i] ^= msg.readBigUInt64LE(off + 8 * i);
    keccakF(s);
  }
  const out = Buffer.alloc(32);
  for (let i = 0; i < 4; i++) out.writeBigUInt64LE(s[i], 8 * i);
  return out;
}

// ---- secp256k1: just enough to sign with a recovery id

const P = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const G = [0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n,
  0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n];

const mod = (a, m) => ((a % m) + m) % m;

function inv(a, m) {
  let [r0, r1, s0, s1] = [mod(a, m), m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0, m);
}

// Affine points, null for infinity; slow but a handful of multiplications per run is nothing.
function padd(a, b) {
  if (!a) return b;
  if (!b) return a;
  let l;
  if (a[0] === b[0]) {
    if (mod(a[1] + b[1], P) === 0n) return null;
    l = mod(3n * a[0] * a[0] * inv(2n * a[1], P), P);
  } else l = mod((b[1] - a[1]) * inv(b[0] - a[0], P), P);
  const x = mod(l * l - a[0] - b[0], P);
  return [x, mod(l * (a[0] - x) - a[1], P)];
}

function pmul(k, pt) {
  let r = null;
  for (let add = pt; k > 0n; k >>= 1n, add = padd(add, add)) if (k & 1n) r = padd(r, add);
  return r;
}

const big = (buf) => BigInt('0x' + Buffer.from(buf).toString('hex'));
const hex32 = (v) => v.toString(16).padStart(64, '0');

function addressOf(key) {
  const q = pmul(key, G);
  const pub = Buffer.from(hex32(q[0]) + hex32(q[1]), 'hex');
  return '0x' + keccak256(pub).subarray(12).toString('hex');
}

function personalSign(key, message) {
  const m = Buffer.from(message, 'utf8');
  const prefix = Buffer.from(`\x19Ethereum Signed Message:\n${m.length}`);
  const z = big(keccak256(Buffer.concat([prefix, m])));
  for (;;) {
    const k = mod(big(crypto.randomBytes(32)), N);
    if (k === 0n) continue;
    const R = pmul(k, G);
    const r = mod(R[0], N);
    let s = mod(inv(k, N) * (z + r * key), N);
    if (r === 0n || s === 0n || R[0] >= N) continue;
    let recid = Number(R[1] & 1n);
    if (s > N / 2n) {
      s = N - s;
      recid ^= 1;
    }
    return '0x' + hex32(r) + hex32(s) + (27 + recid).toString(16);
  }
}

// An identity: the owner key signs an ephemeral key once; each connection signs its timestamp.
class Identity {
  constructor(seed) {
    this.key = mod(big(crypto.createHash('sha256').update('hostile ' + seed).digest()), N);
    this.address = addressOf(this.key);
    this.ephKey = mod(big(crypto.randomBytes(32)), N) || 1n;
    const ephAddress = addressOf(this.ephKey);
    this.ephMessage = `Decentraland Login\nEphemeral address: ${ephAddress}\nExpiration: ` +
      new Date(Date.now() + 3600e3).toISOString();
    this.ephSignature = personalSign(this.key, this.ephMessage);
  }

  authFrame() {
    const ts = String(Date.now());
    const link = (type, payload, signature) => JSON.stringify({ type, payload, signature });
    return JSON.stringify({
      'x-identity-auth-chain-0': link('SIGNER', this.address, ''),
      'x-identity-auth-chain-1': link('ECDSA_EPHEMERAL', this.ephMessage, this.ephSignature),
      'x-identity-auth-chain-2': link('ECDSA_SIGNED_ENTITY', `get:/:${ts}:{}`,
        personalSign(this.ephKey, `get:/:${ts}:{}`)),
      'x-identity-timestamp': ts,
      'x-identity-metadata': '{}',
    });
  }
}

// ---- Protobuf by hand

function varint(v) {
  v = BigInt.asUintN(64, BigInt(v));
  const out = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

const pb = {
  tag: (field, wt) => varint((field << 3) | wt),
  varint: (field, v) => Buffer.concat([pb.tag(field, 0), varint(v)]),
  fixed32(field, v) {
    const b = Buffer.alloc(5);
    b[0] = (field << 3) | 5;
    b.writeUInt32LE(v >>> 0, 1);
    return b;
  },
  bytes: (field, data) => {
    const d = Buffer.from(data);
    return Buffer.concat([pb.tag(field, 2), varint(d.length), d]);
  },
  msg: (...parts) => Buffer.concat(parts.filter((p) => p)),
};

// Decodes one message into {field: [values]}: varints as BigInt, len as Buffer, fixed as number.
function decode(buf) {
  const out = {};
  let i = 0;
  const rv = () => {
    let v = 0n;
    for (let s = 0n; ; s += 7n) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << s;
      if (!(b & 0x80)) return v;
    }
  };
  while (i < buf.length) {
    const tag = Number(rv());
    const f = tag >> 3;
    let v;
    switch (tag & 7) {
      case 0: v = rv(); break;
      case 1: v = buf.readBigUInt64LE(i); i += 8; break;
      case 2: { const n = Number(rv()); v = buf.subarray(i, i + n); i += n; break; }
      case 5: v = buf.readUInt32LE(i); i += 4; break;
      default: throw new Error('wire type ' + (tag & 7));
    }
    (out[f] = out[f] || []).push(v);
  }
  return out;
}

const T = { REQUEST: 1, RESPONSE: 2, STREAM_MESSAGE: 3, STREAM_ACK: 4, CREATE_PORT: 5,
  CREATE_PORT_RESPONSE: 6, REQUEST_MODULE: 7, REQUEST_MODULE_RESPONSE: 8, REMOTE_ERROR: 9,
  DESTROY_PORT: 10, SERVER_READY: 11 };
const rid = (type, n) => (((type & 0xf) << 27) | (n & 0x07ffffff)) >>> 0;

const rpc = {
  createPort: (n, name = 'hostile') =>
    pb.msg(pb.fixed32(1, rid(T.CREATE_PORT, n)), pb.bytes(4, name)),
  requestModule: (n, port, name = 'SocialService') =>
    pb.msg(pb.fixed32(1, rid(T.REQUEST_MODULE, n)), pb.fixed32(2, port), pb.bytes(4, name)),
  request: (n, port, proc, payload = Buffer.alloc(0)) => pb.msg(pb.fixed32(1, rid(T.REQUEST, n)),
    pb.fixed32(2, port), pb.fixed32(4, proc), payload.length ? pb.bytes(6, payload) : null),
  ack: (n, port, seq) => pb.msg(pb.fixed32(1, rid(T.STREAM_ACK, n)), pb.fixed32(2, port),
    seq ? pb.fixed32(4, seq) : null, pb.varint(8, 1)),
  cancel: (n, port, seq) => pb.msg(pb.fixed32(1, rid(T.STREAM_MESSAGE, n)), pb.fixed32(2, port),
    seq ? pb.fixed32(4, seq) : null, pb.varint(7, 1)),
  destroyPort: (n, port) => pb.msg(pb.fixed32(1, rid(T.DESTROY_PORT, n)), pb.fixed32(2, port)),
  // {type, n, fields} of a server frame
  parse(buf) {
    const f = decode(buf);
    const id = (f[1] || [0])[0];
    return { type: (id >>> 27) & 0xf, n: id & 0x07ffffff, f };
  },
};

// ---- The raw WebSocket connection

const OP = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 };

function frame(op, payload = Buffer.alloc(0), { fin = true, mask = true, rsv = 0, len } = {}) {
  payload = Buffer.from(payload);
  const n = len === undefined ? BigInt(payload.length) : BigInt(len);
  const head = [(fin ? 0x80 : 0) | (rsv << 4) | op];
  const m = mask ? 0x80 : 0;
  if (n < 126n) head.push(m | Number(n));
  else if (n < 65536n) head.push(m | 126, Number(n >> 8n), Number(n & 0xffn));
  else {
    head.push(m | 127);
    for (let s = 56n; s >= 0n; s -= 8n) head.push(Number((n >> s) & 0xffn));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), key, body]);
}

class Conn {
  constructor(port, { path = '/', host = '127.0.0.1', autoPong = true } = {}) {
    this.port = port;
    this.path = path;
    this.host = host;
    this.autoPong = autoPong;
    this.messages = []; // {op, data}
    this.waiters = [];
    this.closeCode = null; // from the server's close frame; 1006 when none came
    this.closeReason = '';
    this.ended = false;
    this.pings = 0;
    this.buf = Buffer.alloc(0);
    this.upgraded = false;
    this.frag = null;
    Conn.live.add(this);
  }

  // Ends every connection still open (a test that failed half-way leaves some).
  static destroyAll() {
    for (const c of Conn.live) c.destroy();
  }

  open(timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const key = crypto.randomBytes(16).toString('base64');
      const sock = net.connect(this.port, this.host);
      this.sock = sock;
      sock.setNoDelay(true); // frames go out as sent: no Nagle delay between them
      const timer = setTimeout(() => { sock.destroy(); reject(new Error('upgrade timed out')); },
        timeoutMs);
      sock.on('connect', () => sock.write(`GET ${this.path} HTTP/1.1\r\nHost: ${this.host}\r\n` +
        `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
        'Sec-WebSocket-Version: 13\r\n\r\n'));
      sock.on('data', (d) => {
        this.buf = Buffer.concat([this.buf, d]);
        if (!this.upgraded) {
          const end = this.buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = this.buf.subarray(0, end).toString();
          this.buf = this.buf.subarray(end + 4);
          clearTimeout(timer);
          if (!/^HTTP\/1\.1 101/.test(head)) {
            sock.destroy();
            reject(new Error('no upgrade: ' + head.split('\r\n')[0]));
            return;
          }
          this.upgraded = true;
          resolve(this);
        }
        this.parse();
      });
      sock.on('error', (e) => { if (!this.upgraded) { clearTimeout(timer); reject(e); } });
      sock.on('close', () => {
        Conn.live.delete(this);
        clearTimeout(timer);
        if (!this.upgraded) reject(new Error('closed before the upgrade'));
        this.ended = true;
        if (this.closeCode === null) this.closeCode = 1006;
        this.wake();
      });
    });
  }

  parse() {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let n = b[1] & 0x7f;
      let off = 2;
      if (n === 126) {
        if (b.length < 4) return;
        n = b.readUInt16BE(2);
        off = 4;
      } else if (n === 127) {
        if (b.length < 10) return;
        n = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b.length < off + n) return;
      const op = b[0] & 0x0f;
      const fin = !!(b[0] & 0x80);
      const data = b.subarray(off, off + n);
      this.buf = b.subarray(off + n);
      if (op === OP.PING) {
        this.pings++;
        if (this.autoPong && !this.sock.destroyed) this.sock.write(frame(OP.PONG, data));
      } else if (op === OP.CLOSE) {
        if (this.closeCode === null) {
          this.closeCode = data.length >= 2 ? data.readUInt16BE(0) : 1005;
          this.closeReason = data.subarray(2).toString();
          // Answer like a browser, then let the server hang up.
          if (!this.sock.destroyed) this.sock.write(frame(OP.CLOSE, data.subarray(0, 2)));
        }
        this.wake();
      } else if (op === OP.PONG) {
        // ignored
      } else {
        if (op !== OP.CONT) this.frag = { op, parts: [] };
        if (this.frag) this.frag.parts.push(data);
        if (fin && this.frag) {
          this.messages.push({ op: this.frag.op, data: Buffer.concat(this.frag.parts) });
          this.frag = null;
          this.wake();
        }
      }
    }
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  // Resolves when cond() is true, or rejects after timeoutMs.
  until(cond, what, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = cond();
        if (v !== undefined && v !== false && v !== null) {
          clearTimeout(timer);
          resolve(v);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      const loop = () => { if (!check()) this.waiters.push(loop); };
      loop();
    });
  }

  // The next data message (an rpc frame, parsed), or null once the connection closed.
  async next(timeoutMs = 10000) {
    return this.until(() => {
      if (this.messages.length) return { m: this.messages.shift() };
      if (this.closeCode !== null) return { m: null };
      return false;
    }, 'a message', timeoutMs).then(({ m }) =>
      (m ? Object.assign(rpc.parse(m.data), { raw: m.data }) : null));
  }

  // The close code the server sent (1006: the TCP connection ended without one).
  async closed(timeoutMs = 10000) {
    await this.until(() => this.closeCode !== null && (this.closeCode !== 1006 || this.ended),
      'the close', timeoutMs);
    return this.closeCode;
  }

  // Waits for the TCP connection to end.
  async gone(timeoutMs = 10000) {
    await this.until(() => this.ended, 'the end of the connection', timeoutMs);
    return this.closeCode;
  }

  raw(bytes) { if (!this.sock.destroyed) this.sock.write(bytes); }
  send(data, op = OP.BINARY, opts) { this.raw(frame(op, data, opts)); }
  text(s) { this.send(Buffer.from(s), OP.TEXT); }
  close(code = 1000) {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(code);
    this.send(b, OP.CLOSE);
  }
  destroy() {
    Conn.live.delete(this);
    if (this.sock) this.sock.destroy();
  }
  reset() { this.sock.resetAndDestroy ? this.sock.resetAndDestroy() : this.sock.destroy(); }
}

Conn.live = new Set();

// Authenticates: auth frame, waits for SERVER_READY.
async function authed(port, id, opts) {
  const c = await new Conn(port, opts).open();
  c.text(id.authFrame());
  const m = await c.next();
  if (!m || m.type !== T.SERVER_READY)
    throw new Error('no SERVER_READY (close ' + c.closeCode + ')');
  c.nextNo = 1;
  return c;
}

// CreatePort + RequestModule on an authenticated connection; returns the port id.
async function session(c) {
  const a = c.nextNo++;
  c.send(rpc.createPort(a));
  const r = await c.next();
  if (!r || r.type !== T.CREATE_PORT_RESPONSE) throw new Error('CreatePort failed');
  const port = r.f[2][0];
  const b = c.nextNo++;
  c.send(rpc.requestModule(b, port));
  const m = await c.next();
  if (!m || m.type !== T.REQUEST_MODULE_RESPONSE) throw new Error('RequestModule failed');
  c.port = port;
  return port;
}

// One unary call; returns the parsed answer frame.
async function call(c, proc, payload) {
  const n = c.nextNo++;
  c.send(rpc.request(n, c.port, proc, payload));
  const m = await c.next();
  if (m && m.n !== n) throw new Error(`answer to ${m.n}, expected ${n}`);
  return m;
}

module.exports = { keccak256, addressOf, personalSign, Identity, pb, decode, rpc, T, rid, OP,
  frame, Conn, authed, session, call, varint };
