'use strict';
// hostile.js -- the hostile suite's client: every case is something a broken or malicious client
// sends, and asserts what a user sees (the close code and text, the RemoteError, the typed
// error) and that the daemon stays healthy. Run by hostile.sh, which starts the daemons:
//   node hostile.js MAIN_PORT TIGHT_PORT TIGHT_PID QUICK_PORT [CASE...]
// MAIN runs with the default limits; TIGHT with small caps and buffers, and its last case
// SIGTERMs it; QUICK with a 1 s auth timeout and a 2 s idle timeout (see hostile.sh). Prints
// "hostile: NAME ... ok" or "... FAILED" and why.
//
// No timed assertion: every wait is for a condition, with a safety limit that only turns a hang
// into a failure.

const net = require('net');
const crypto = require('crypto');
const w = require('./wsraw.js');

const { T, OP, pb, rpc } = w;
const [MAIN, TIGHT, TIGHT_PID, QUICK] = process.argv.slice(2, 6).map(Number);
const ONLY = process.argv.slice(6);

// ---- helpers

class Failure extends Error {}
function expect(cond, what) {
  if (!cond) throw new Failure(what);
}
function expectEq(got, want, what) {
  const g = JSON.stringify(got);
  const e = JSON.stringify(want);
  if (g !== e) throw new Failure(`${what}: expected ${e}, got ${g}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let seq = 0;
// A fresh identity per use: names are unique per run, so the database's per-user rate limits are
// never shared between cases.
const identity = (tag) => new w.Identity(`${tag} ${process.pid} ${Date.now()} ${seq++}`);
const open = (port, opts) => new w.Conn(port, opts).open();
const user = (address) => pb.bytes(1, address); // User { address }
const withUser = (address) => pb.bytes(1, user(address)); // { user: User }
const OTHER = '0x' + 'ab'.repeat(20);

async function ready(port, tag = 'ready') {
  const c = await w.authed(port, identity(tag));
  await w.session(c);
  return c;
}

// The text of a RemoteError, or null.
const remoteError = (m) => (m && m.type === T.REMOTE_ERROR ? m.f[3][0].toString() : null);

// A Response's payload decoded one level: {case: number, message: string|undefined}. Typed
// errors are {message = 1} inside their oneof case.
function responseCase(m) {
  expect(m && m.type === T.RESPONSE, `a Response, got ${m ? 'type ' + m.type : 'a close'}` +
    (remoteError(m) ? ` (${remoteError(m)})` : ''));
  const d = w.decode(m.f[6] ? m.f[6][0] : Buffer.alloc(0));
  const cases = Object.keys(d).map(Number);
  const first = cases[0];
  let message;
  if (first !== undefined && d[first][0] instanceof Buffer) {
    try {
      const inner = w.decode(d[first][0]);
      if (inner[1] && inner[1][0] instanceof Buffer) message = inner[1][0].toString();
    } catch (e) {
      // not a typed error
    }
  }
  return { cases, case: first, message };
}

// Closes politely and waits for the end; the connection must still be usable until then.
async function bye(c) {
  c.close(1000);
  expectEq(await c.closed(), 1000, 'close handshake');
}

function http(port, request, timeoutMs = 10000) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = Buffer.alloc(0);
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    const done = (why) => {
      clearTimeout(timer);
      s.destroy();
      const text = out.toString('latin1');
      resolve({ why, status: (text.match(/^HTTP\/1\.[01] (\d{3})/) || [])[1] || null,
        body: text.split('\r\n\r\n').slice(1).join('\r\n\r\n') });
    };
    s.on('connect', () => (typeof request === 'function' ? request(s) : s.write(request)));
    s.on('data', (d) => (out = Buffer.concat([out, d])));
    s.on('close', () => done('closed'));
    s.on('error', () => done('error'));
  });
}

async function healthy(port) {
  const r = await http(port, 'GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  expectEq([r.status, r.body], ['200', 'ok'], `/health/live on ${port}`);
}

async function status(port) {
  const r = await http(port, 'GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  expectEq(r.status, '200', '/status');
  return JSON.parse(r.body);
}

// Waits until the daemon holds no connection, stream or subscription any more.
async function drained(port) {
  let s;
  for (let i = 0; i < 300; i++) {
    s = await status(port);
    if (s.connections === 0 && s.unauthenticated === 0 && s.streams === 0 &&
      s.subscriptions === 0)
      return;
    await sleep(100);
  }
  throw new Failure('the daemon still holds ' + JSON.stringify(s));
}

// ---- cases

const cases = [];
const main = (name, fn) => cases.push({ name, port: () => MAIN, fn });
const tight = (name, fn) => cases.push({ name, port: () => TIGHT, fn });
const quick = (name, fn) => cases.push({ name, port: () => QUICK, fn });

// Before authentication

main('first_frame_not_json', async (port) => {
  const c = await open(port);
  c.text('hello');
  expectEq([await c.closed(), c.closeReason], [3003, 'Unauthorized'], 'close');
});

main('first_frame_binary_garbage', async (port) => {
  const c = await open(port);
  c.send(crypto.randomBytes(700));
  expectEq(await c.closed(), 3003, 'close');
});

main('first_frame_deeply_nested_json', async (port) => {
  const c = await open(port);
  c.text('['.repeat(60000));
  expectEq(await c.closed(), 3003, 'close');
  const d = await open(port);
  d.text('{"a":'.repeat(20000) + '1' + '}'.repeat(20000));
  expectEq(await d.closed(), 3003, 'close of nested objects');
});

main('text_frames_must_be_utf8', async (port) => {
  // RFC 6455 8.1: invalid UTF-8 in a TEXT frame fails the connection with 1007
  const c = await open(port);
  c.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), OP.TEXT);
  expectEq(await c.closed(), 1007, 'close');
  // a character split between two fragments is still UTF-8 (and then no auth frame)
  const d = await open(port);
  d.send(Buffer.from([0x7b, 0xe2, 0x82]), OP.TEXT, { fin: false });
  d.send(Buffer.from([0xac, 0x7d]), OP.CONT);
  expectEq(await d.closed(), 3003, 'close of a split character');
});

main('first_frame_larger_than_any_auth_frame', async (port) => {
  // 100 KB is no auth frame: refused as soon as its header says so, not buffered first
  const c = await open(port);
  c.text('{"x-identity-auth-chain-0":"' + 'a'.repeat(100000) + '"}');
  expectEq(await c.closed(), 3003, 'close');
  c.destroy();
});

main('first_frame_over_max_payload', async (port) => {
  const c = await open(port);
  c.send(Buffer.alloc(1048577, 0x20));
  expectEq([await c.closed(), c.closeReason], [1009, 'frame_too_large'], 'close');
  c.destroy();
});

main('first_frame_announces_2_62_bytes', async (port) => {
  const c = await open(port);
  c.raw(w.frame(OP.BINARY, Buffer.alloc(16), { len: 2n ** 62n }));
  expectEq(await c.closed(), 1009, 'close');
  c.destroy(); // the server reads the rest as that frame: it would never see our close
});

main('first_frame_fragmented_auth_accepted', async (port) => {
  // a valid auth frame in 200 pieces is one message, and a valid one
  const c = await open(port);
  const frame = Buffer.from(identity('frag').authFrame());
  const step = Math.ceil(frame.length / 200);
  for (let i = 0; i < frame.length; i += step)
    c.send(frame.subarray(i, i + step), i === 0 ? OP.TEXT : OP.CONT,
      { fin: i + step >= frame.length });
  const m = await c.next();
  expectEq(m && m.type, T.SERVER_READY, 'SERVER_READY');
  await bye(c);
});

main('first_frame_fragments_beyond_auth_size', async (port) => {
  const c = await open(port);
  c.send(Buffer.alloc(1000, 0x20), OP.TEXT, { fin: false });
  for (let i = 0; i < 100; i++) c.send(Buffer.alloc(1000, 0x20), OP.CONT, { fin: false });
  expectEq(await c.closed(), 3003, 'close');
  c.destroy();
});

main('binary_auth_frame_and_pipelined_frames', async (port) => {
  // @dcl/rpc clients send the auth frame as binary and CreatePort right behind it
  const c = await open(port);
  c.send(Buffer.from(identity('pipe').authFrame()));
  c.send(rpc.createPort(1));
  c.send(rpc.requestModule(2, 1));
  const got = [];
  for (let i = 0; i < 3; i++) got.push((await c.next()).type);
  expectEq(got, [T.SERVER_READY, T.CREATE_PORT_RESPONSE, T.REQUEST_MODULE_RESPONSE], 'frames');
  await bye(c);
});

main('auth_frame_sent_twice', async (port) => {
  const id = identity('twice');
  const c = await open(port);
  c.text(id.authFrame());
  c.text(id.authFrame());
  const m = await c.next();
  expectEq(m && m.type, T.SERVER_READY, 'SERVER_READY');
  // the second one is a TEXT frame after authentication
  expectEq(await c.closed(), 1003, 'close');
});

main('bad_websocket_framing', async (port) => {
  const got = [];
  for (const bad of [
    (c) => c.send(Buffer.from('abc'), OP.CONT), // continuation with nothing to continue
    (c) => c.send(Buffer.from('abc'), 3), // reserved opcode
    (c) => c.send(Buffer.from('abc'), OP.TEXT, { rsv: 4 }), // RSV1 without an extension
    (c) => c.send(Buffer.from('a'), OP.PING, { fin: false }), // fragmented control frame
  ]) {
    const c = await open(port);
    bad(c);
    got.push(await c.closed());
  }
  expectEq(got, [1002, 1002, 1002, 1002], 'close codes');
});

main('resets_mid_frame_and_mid_verification', async (port) => {
  const a = await open(port);
  a.raw(w.frame(OP.TEXT, Buffer.alloc(3000)).subarray(0, 1000));
  const b = await open(port);
  b.text(identity('reset').authFrame());
  const c = await ready(port, 'reset');
  c.raw(w.frame(OP.BINARY, Buffer.alloc(3000)).subarray(0, 1500));
  await sleep(50);
  for (const x of [a, b, c]) x.reset();
  for (const x of [a, b, c]) await x.gone();
  await healthy(port);
});

// After authentication: the @dcl/rpc layer

main('malformed_rpc_frames_close_1002', async (port) => {
  const frames = {
    garbage: Buffer.from('ffffffffffffffffffff01', 'hex'),
    empty: Buffer.alloc(0),
    truncated_fixed32: Buffer.from([0x0d, 1, 2]),
    truncated_varint: Buffer.from([0x08, 0xff, 0xff]),
    unknown_type_12: pb.fixed32(1, w.rid(12, 1)),
    type_0: pb.fixed32(1, w.rid(0, 1)),
    server_only_type: pb.fixed32(1, w.rid(T.SERVER_READY, 1)),
    header_wrong_wire_type: pb.varint(1, 5),
    field_wrong_wire_type: pb.msg(pb.fixed32(1, w.rid(T.CREATE_PORT, 1)), pb.varint(4, 3)),
    huge_length_prefix: pb.msg(pb.fixed32(1, w.rid(T.CREATE_PORT, 1)), pb.tag(4, 2),
      w.varint(0xffffffffffffn)),
    invalid_utf8_port_name: pb.msg(pb.fixed32(1, w.rid(T.CREATE_PORT, 1)),
      pb.bytes(4, Buffer.from([0xc3, 0x28]))),
  };
  const got = {};
  const want = {};
  await Promise.all(Object.entries(frames).map(async ([name, f]) => {
    const c = await w.authed(port, identity(name));
    c.send(f);
    got[name] = [await c.closed(), c.closeReason];
    want[name] = [1002, 'protocol_error'];
  }));
  expectEq(got, want, 'close codes');
});

main('unknown_fields_are_skipped', async (port) => {
  const c = await w.authed(port, identity('unknown'));
  c.send(pb.msg(pb.varint(99, 3), pb.fixed32(1, w.rid(T.CREATE_PORT, 7)), pb.bytes(1000, 'x'),
    pb.tag(50, 3), pb.varint(1, 1), pb.tag(50, 4), pb.bytes(4, 'p')));
  const m = await c.next();
  expectEq([m.type, m.n, m.f[2][0]], [T.CREATE_PORT_RESPONSE, 7, 1], 'CreatePortResponse');
  await bye(c);
});

main('message_numbers_0_and_max_echoed', async (port) => {
  const c = await w.authed(port, identity('numbers'));
  c.send(rpc.createPort(0));
  c.send(rpc.createPort(0x07ffffff));
  const a = await c.next();
  const b = await c.next();
  expectEq([[a.type, a.n], [b.type, b.n]],
    [[T.CREATE_PORT_RESPONSE, 0], [T.CREATE_PORT_RESPONSE, 0x07ffffff]], 'answers');
  await bye(c);
});

main('unknown_port_module_procedure', async (port) => {
  const c = await w.authed(port, identity('unknowns'));
  c.send(rpc.request(1, 77, 1));
  expectEq(remoteError(await c.next()), 'invalid portId', 'Request on an unknown port');
  c.send(rpc.requestModule(2, 9));
  expectEq(remoteError(await c.next()), 'Cannot find port 9', 'RequestModule, unknown port');
  c.send(rpc.createPort(3, 'p'));
  const port1 = (await c.next()).f[2][0];
  c.send(rpc.requestModule(4, port1, 'NoSuchModule'));
  expectEq(remoteError(await c.next()), 'Module NoSuchModule is not available for port p (1))',
    'unknown module');
  c.send(rpc.request(5, port1, 1));
  expectEq(remoteError(await c.next()), 'procedureId 1 is missing in p (1))',
    'procedure before RequestModule');
  c.port = port1;
  c.nextNo = 6;
  await w.session(c);
  for (const id of [0, 34, 0xffffffff]) {
    const m = await w.call(c, id);
    expectEq(remoteError(m), `procedureId ${id} is missing in hostile (${c.port}))`,
      `procedure ${id}`);
  }
  c.send(pb.msg(pb.fixed32(1, w.rid(T.REQUEST, 50)), pb.fixed32(2, c.port), pb.fixed32(4, 1),
    pb.fixed32(5, 1)));
  expectEq(remoteError(await c.next()), 'GetFriends does not take a client stream',
    'client stream');
  await bye(c);
});

main('thousands_of_create_port', async (port) => {
  const c = await w.authed(port, identity('ports'));
  for (let i = 1; i <= 3000; i++) c.send(rpc.createPort(i));
  const types = [];
  for (let m; (m = await c.next());)
    types.push(m.type === T.REMOTE_ERROR ? remoteError(m) : m.type);
  expectEq(types.slice(0, 17), [...Array(16).fill(T.CREATE_PORT_RESPONSE),
    'Cannot create port: too many ports (limit 16)'], 'the first answers');
  // the burst of 100 messages is spent long before 3000
  expect(types.length < 3000, 'the flood was cut');
  expectEq([c.closeCode, c.closeReason], [1008, 'rate_limited'], 'close');
});

main('many_pending_calls_each_answered_once', async (port) => {
  const c = await ready(port, 'pending');
  const first = c.nextNo;
  for (let i = 0; i < 90; i++) c.send(rpc.request(first + i, c.port, 7, withUser(OTHER)));
  const seen = new Map();
  for (let i = 0; i < 90; i++) {
    const m = await c.next();
    expect(m, 'connection open');
    const err = remoteError(m);
    expect(m.type === T.RESPONSE || /too many pending calls/.test(err),
      `answer ${m.n}: ${err || m.type}`);
    seen.set(m.n, (seen.get(m.n) || 0) + 1);
  }
  expectEq(seen.size, 90, 'distinct answers');
  await bye(c);
});

main('stream_acks_cancels_and_destroy_port', async (port) => {
  const c = await ready(port, 'streams');
  c.send(rpc.ack(999, c.port, 1)); // ack for no stream
  c.send(rpc.cancel(998, c.port, 0)); // cancel of no stream
  c.send(rpc.request(50, c.port, 6)); // SubscribeToFriendshipUpdates
  const offer = await c.next();
  expectEq([offer.type, offer.n], [T.STREAM_MESSAGE, 50], 'offer');
  c.send(rpc.cancel(50, c.port, 0));
  c.send(rpc.cancel(50, c.port, 0)); // twice
  c.send(rpc.request(51, c.port, 13)); // SubscribeToBlockUpdates
  expectEq((await c.next()).n, 51, 'second offer');
  c.send(rpc.ack(51, c.port, 0));
  c.send(rpc.destroyPort(52, c.port)); // mid-stream
  c.send(rpc.destroyPort(53, c.port)); // twice
  c.send(rpc.ack(51, c.port, 0)); // ack after the port is gone
  c.nextNo = 60;
  await w.session(c);
  responseCase(await w.call(c, 14)); // still serving
  await bye(c);
  await drained(port);
});

main('text_frame_after_auth', async (port) => {
  const c = await ready(port, 'text');
  c.text('{"hello":1}');
  expectEq([await c.closed(), c.closeReason], [1003, 'protocol_error'], 'close');
});

main('rate_flood_1008', async (port) => {
  const c = await ready(port, 'rate');
  for (let i = 0; i < 400; i++) c.send(rpc.request(1000 + i, c.port, 99));
  expectEq([await c.closed(), c.closeReason], [1008, 'rate_limited'], 'close');
});

// After authentication: the procedures

const UNARY = [1, 2, 3, 4, 5, 7, 9, 10, 11, 12, 14, 15, 16];
const NAMES = {
  1: ['GetFriends', 'GetFriendsPayload'],
  2: ['GetMutualFriends', 'GetMutualFriendsPayload'],
  3: ['GetPendingFriendshipRequests', 'GetFriendshipRequestsPayload'],
  4: ['GetSentFriendshipRequests', 'GetFriendshipRequestsPayload'],
  5: ['UpsertFriendship', 'UpsertFriendshipPayload'],
  7: ['GetFriendshipStatus', 'GetFriendshipStatusPayload'],
  9: ['BlockUser', 'BlockUserPayload'], 10: ['UnblockUser', 'UnblockUserPayload'],
  11: ['GetBlockedUsers', 'GetBlockedUsersPayload'], 12: ['GetBlockingStatus', 'Empty'],
  14: ['GetSocialSettings', 'Empty'], 15: ['UpsertSocialSettings', 'UpsertSocialSettingsPayload'],
  16: ['GetPrivateMessagesSettings', 'GetPrivateMessagesSettingsPayload'] };

main('garbage_payload_each_procedure', async (port) => {
  const c = await ready(port, 'garbage');
  for (const p of UNARY) {
    const m = await w.call(c, p, Buffer.from([0xff, 0xff, 0xff]));
    expectEq(remoteError(m), `Invalid ${NAMES[p][0]} payload: not a valid ${NAMES[p][1]} message`,
      `procedure ${p}`);
  }
  await bye(c);
});

main('missing_and_invalid_users', async (port) => {
  const c = await ready(port, 'users');
  const missing = 'User address is missing in the request payload';
  const invalid = 'Invalid user address in the request payload';
  const typed = (n, message) => ({ cases: [n], case: n, message });
  expectEq(responseCase(await w.call(c, 7)), typed(3, missing), 'status, empty');
  expectEq(remoteError(await w.call(c, 2)), missing, 'mutual friends, empty');
  for (const bad of ['x', '0x', '0x' + 'g'.repeat(40), '0x' + '1'.repeat(41), ' ' + OTHER,
    "'; drop table x; --", '{"a"}', '"', '\\']) {
    expectEq(responseCase(await w.call(c, 7, withUser(bad))), typed(3, invalid),
      `status of ${JSON.stringify(bad)}`);
    expectEq(responseCase(await w.call(c, 9, withUser(bad))), typed(3, invalid),
      `block of ${JSON.stringify(bad)}`);
  }
  await bye(c);
});

main('invalid_utf8_strings_are_invalid_requests', async (port) => {
  const c = await ready(port, 'utf8');
  const bad = Buffer.concat([Buffer.from('0x'), Buffer.from([0xff, 0xfe]), Buffer.alloc(38, 0x31)]);
  const text = 'The request payload holds a string that is not valid UTF-8';
  expectEq(responseCase(await w.call(c, 7, withUser(bad))), { cases: [3], case: 3, message: text },
    'status');
  const badMessage = pb.bytes(1, pb.msg(user(pb.bytes(1, OTHER)),
    pb.bytes(3, Buffer.from([0xc3, 0x28]))));
  expectEq(responseCase(await w.call(c, 5, badMessage)), { cases: [4], case: 4, message: text },
    'request message');
  expectEq(responseCase(await w.call(c, 16, withUser(bad))), { cases: [3], case: 3, message: text },
    'private messages settings');
  await bye(c);
});

main('oversized_payloads', async (port) => {
  const c = await ready(port, 'big');
  const text = 'The request payload is too large';
  const big = 'a'.repeat(900000);
  expectEq(responseCase(await w.call(c, 7, withUser(big))), { cases: [3], case: 3, message: text },
    '900 KB address');
  const bigMessage = pb.bytes(1, pb.msg(user(pb.bytes(1, OTHER)), pb.bytes(3, big)));
  expectEq(responseCase(await w.call(c, 5, bigMessage)), { cases: [4], case: 4, message: text },
    '900 KB message');
  // a megabyte of two-byte unknown fields: refused before it is unpacked
  expectEq(remoteError(await w.call(c, 1, Buffer.alloc(1048000).fill(Buffer.from([0x78, 0])))),
    text, 'unknown fields');
  // within the size limit, but more fields than any real payload
  expectEq(remoteError(await w.call(c, 12, Buffer.alloc(16000).fill(Buffer.from([0x78, 0])))),
    text, '8000 unknown fields');
  expectEq(responseCase(await w.call(c, 5, pb.bytes(1, pb.msg(user(pb.bytes(1, OTHER)),
    pb.bytes(3, 'é'.repeat(141)))))).message, 'The friendship request message is too long',
  '141-character message');
  await bye(c);
});

main('pagination_extremes', async (port) => {
  const c = await ready(port, 'pages');
  const pag = (l, o) => pb.bytes(1, pb.msg(pb.varint(1, l), pb.varint(2, o)));
  for (const [l, o] of [[-1, -1], [0, 0], [2147483647, 2147483647], [-2147483648, -2147483648],
    [1, 100001], [5000, 0], [0xffffffffffffffffn, 0x7fffffffffffffffn]]) {
    for (const p of [1, 11]) // no error case: the page and its pagination data
      expect(responseCase(await w.call(c, p, pag(l, o))).cases.includes(2),
        `procedure ${p} ${l},${o}`);
    for (const p of [3, 4]) // the requests case (1)
      expect(responseCase(await w.call(c, p, pag(l, o))).case === 1, `procedure ${p} ${l},${o}`);
    const m = await w.call(c, 2, pb.msg(pb.bytes(1, pb.bytes(1, OTHER)), pb.bytes(2,
      pb.msg(pb.varint(1, l), pb.varint(2, o)))));
    expect(m.type === T.RESPONSE, `mutual friends ${l},${o}: ${remoteError(m)}`);
  }
  await bye(c);
});

main('private_messages_settings_51_and_10000', async (port) => {
  const c = await ready(port, 'pm');
  const users = (n) => Buffer.concat(Array.from({ length: n },
    (_, i) => withUser('0x' + i.toString(16).padStart(40, '0'))));
  expectEq(responseCase(await w.call(c, 16, users(50))).case, 1, '50 addresses');
  for (const n of [51, 10000])
    expectEq(responseCase(await w.call(c, 16, users(n))),
      { cases: [3], case: 3, message: `Too many user addresses: ${n}, at most 50 are allowed` },
      `${n} addresses`);
  // a megabyte of empty users: counted, never unpacked
  expectEq(responseCase(await w.call(c, 16, Buffer.alloc(1048000).fill(Buffer.from([0x0a, 0])))),
    { cases: [3], case: 3, message: 'Too many user addresses: 524000, at most 50 are allowed' },
    '524000 empty users');
  await bye(c);
});

main('settings_enum_values', async (port) => {
  const c = await ready(port, 'enums');
  expectEq(responseCase(await w.call(c, 15, pb.varint(1, 7))).message,
    'Invalid value 7 for private_messages_privacy', 'privacy 7');
  expectEq(responseCase(await w.call(c, 15, pb.varint(2, -1))).message,
    'Invalid value -1 for blocked_users_messages_visibility', 'visibility -1');
  await bye(c);
});

main('unsupported_procedures_and_streams', async (port) => {
  const c = await ready(port, 'unsupported');
  for (const [p, name] of [[18, 'StartPrivateVoiceChat'],
    [22, 'GetIncomingPrivateVoiceChatRequest'], [33, 'MuteSpeakerFromCommunityVoiceChat']])
    expectEq(remoteError(await w.call(c, p, Buffer.from([1, 2, 3]))),
      `${name} is not supported by this server`, `procedure ${p}`);
  for (const p of [17, 23, 32]) {
    const n = c.nextNo++;
    c.send(rpc.request(n, c.port, p));
    const offer = await c.next();
    c.send(rpc.ack(n, c.port, 0));
    const end = await c.next();
    expectEq([offer.type, offer.n, end.type, end.n, !!end.f[7]],
      [T.STREAM_MESSAGE, n, T.STREAM_MESSAGE, n, true], `stream ${p} ends`);
  }
  await bye(c);
});

// HTTP on the same port

main('http_odd_requests', async (port) => {
  const r = async (req) => http(port, req);
  const close = 'Host: x\r\nConnection: close\r\n\r\n';
  const post = 'POST /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello';
  expectEq((await r(post)).status, '405', 'POST with a body');
  expectEq((await r(`PUT /status HTTP/1.1\r\nContent-Length: 0\r\n${close}`)).status, '405', 'PUT');
  expectEq((await r(`DELETE /status HTTP/1.1\r\n${close}`)).status, '405', 'DELETE');
  expectEq((await r(`GET /nope HTTP/1.1\r\n${close}`)).status, '404', 'unknown path');
  expectEq((await r(`GET /../../etc/passwd HTTP/1.1\r\n${close}`)).status, '404', 'dot-dot');
  expectEq((await r(`GET /health/live?x=1 HTTP/1.1\r\n${close}`)).body, 'ok', 'query string');
  const head = await r(`HEAD /metrics HTTP/1.1\r\n${close}`);
  expectEq([head.status, head.body], ['200', ''], 'HEAD');
  // whatever lws answers to these, the daemon must live on
  for (const req of [`OPTIONS * HTTP/1.1\r\n${close}`, `FOO /status HTTP/1.1\r\n${close}`,
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', crypto.randomBytes(3000),
    `GET /${'a'.repeat(10000)} HTTP/1.1\r\n${close}`,
    `GET /status HTTP/1.1\r\nX-Big: ${'b'.repeat(100000)}\r\n${close}`,
    `GET /status HTTP/1.1\r\n${'X-A: 1\r\n'.repeat(5000)}${close}`,
    'POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc'])
    await http(port, (s) => { s.write(req); setTimeout(() => s.destroy(), 100); });
  const upgrade = await r('GET /metrics HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n' +
    'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    'Sec-WebSocket-Version: 13\r\n\r\n');
  expect(upgrade.status !== '101', 'no WebSocket on /metrics');
  await healthy(port);
});

main('connection_churn_leaves_nothing_behind', async (port) => {
  const ids = Array.from({ length: 10 }, (_, i) => identity('churn' + i));
  const cycle = async (i) => {
    switch (i % 6) {
      case 0: { const c = await open(port); c.text('garbage'); await c.closed(); return; }
      case 1: {
        const c = await open(port);
        c.raw(w.frame(OP.TEXT, Buffer.alloc(5000)).subarray(0, 2000));
        c.reset();
        return;
      }
      case 2: { const c = await open(port); c.text(ids[i % 10].authFrame()); c.reset(); return; }
      default: break;
    }
    const c = await w.authed(port, ids[i % 10]);
    await w.session(c);
    if (i % 6 === 3) {
      c.send(rpc.request(50, c.port, 6));
      await c.next();
      c.send(rpc.request(51, c.port, 13));
      await c.next();
      c.send(rpc.request(52, c.port, 1));
      c.reset();
    } else if (i % 6 === 4) {
      c.send(Buffer.from([1, 2, 3]));
      await c.closed();
    } else {
      c.send(rpc.request(60, c.port, 6));
      await c.next();
      await bye(c);
    }
  };
  for (let i = 0; i < 240; i += 12)
    await Promise.all(Array.from({ length: 12 }, (_, k) => cycle(i + k)));
  await drained(port);
  await healthy(port);
});

// The tight daemon: small limits (hostile.sh)

quick('auth_timeout_3004', async (port) => {
  // the timeout falls on the same instant as the first keepalive ping (idle 2 s, auth 1 s):
  // the close frame must still read 3004 "Authorization timeout"
  const c = await open(port);
  expectEq([await c.closed(), c.closeReason], [3004, 'Authorization timeout'], 'close');
});

tight('unauthenticated_cap_1013', async (port) => {
  const held = [];
  for (let i = 0; i < 4; i++) held.push(await open(port));
  const extra = await open(port);
  expectEq([await extra.closed(), extra.closeReason], [1013, 'too_many_connections'], 'fifth');
  // one of them authenticates: a slot is free again
  held[0].text(identity('cap').authFrame());
  expectEq((await held[0].next()).type, T.SERVER_READY, 'SERVER_READY');
  const again = await open(port);
  again.text(identity('cap').authFrame());
  expectEq((await again.next()).type, T.SERVER_READY, 'admitted after a slot was freed');
  for (const c of [...held, again]) c.destroy();
  await drained(port);
});

tight('connection_cap_1013', async (port) => {
  const id = identity('conns');
  const held = [];
  for (let i = 0; i < 12; i++) held.push(await w.authed(port, id));
  const extra = await open(port);
  expectEq([await extra.closed(), extra.closeReason], [1013, 'too_many_connections'], 'thirteenth');
  for (const c of held) c.destroy();
  await drained(port);
  const c = await w.authed(port, id);
  await bye(c);
});

quick('idle_peer_without_pongs_is_cut', async (port) => {
  const c = await w.authed(port, identity('idle'), { autoPong: false });
  expectEq([await c.closed(), c.closeReason], [1001, 'idle_timeout'], 'close');
  expect(c.pings >= 1, 'was pinged first');
  await c.gone();
});

quick('busy_peer_without_pongs_stays', async (port) => {
  // any message proves a client alive, not only a pong: three idle timeouts (2 s) of calls
  // every 200 ms, never answering a ping, and the connection is still served
  const c = await ready(port, 'busy');
  c.autoPong = false;
  for (let i = 0; i < 30; i++) {
    responseCase(await w.call(c, 14));
    await sleep(200);
  }
  expect(c.closeCode === null, `still open (closed with ${c.closeCode} ${c.closeReason})`);
  await bye(c);
});

tight('stream_never_acked_1011', async (port) => {
  // STREAM_BUFFER=2: the offer is never acknowledged, so every update waits in the buffer
  const a = identity('watcher');
  const b = identity('blocker');
  const ca = await w.authed(port, a);
  await w.session(ca);
  ca.send(rpc.request(77, ca.port, 13)); // SubscribeToBlockUpdates
  expectEq((await ca.next()).type, T.STREAM_MESSAGE, 'offer');
  const cb = await ready(port, 'blocker');
  for (const p of [9, 10, 9]) responseCase(await w.call(cb, p, withUser(a.address)));
  expectEq([await ca.closed(), ca.closeReason], [1011, 'stream_overflow'], 'close');
  await bye(cb);
});

tight('slow_reader_1011_others_unaffected', async (port) => {
  const c = await ready(port, 'slow');
  c.sock.pause();
  // ~1.6 KB answers: far more than the socket buffers and 16 queued frames hold
  for (let i = 0; i < 20000; i++) c.send(rpc.requestModule(100 + i, c.port));
  const other = await ready(port, 'other');
  responseCase(await w.call(other, 14));
  c.sock.resume();
  expectEq([await c.closed(), c.closeReason], [1011, 'queue_overflow'], 'close');
  await bye(other);
});

tight('sigterm_closes_everyone_1001', async (port) => {
  const conns = {};
  conns.unauthenticated = await open(port);
  conns.mid_frame = await open(port);
  conns.mid_frame.raw(w.frame(OP.TEXT, Buffer.alloc(3000)).subarray(0, 1000));
  conns.fragmented = await open(port);
  conns.fragmented.send(Buffer.from('{'), OP.TEXT, { fin: false });
  conns.authenticated = await w.authed(port, identity('term'));
  conns.streaming = await ready(port, 'term');
  conns.streaming.send(rpc.request(50, conns.streaming.port, 6));
  await conns.streaming.next();
  conns.calling = await ready(port, 'term');
  conns.calling.send(rpc.request(60, conns.calling.port, 1));
  process.kill(TIGHT_PID, 'SIGTERM');
  const got = {};
  const want = {};
  for (const [name, c] of Object.entries(conns)) {
    got[name] = await c.closed(20000);
    want[name] = 1001;
  }
  expectEq(got, want, 'close codes');
});

// ---- runner

(async () => {
  let failed = 0;
  for (const { name, port, fn } of cases) {
    if (ONLY.length && !ONLY.includes(name)) continue;
    try {
      await fn(port());
      console.log(`hostile: ${name} ... ok`);
    } catch (e) {
      failed++;
      console.log(`hostile: ${name} ... FAILED`);
      console.error(`  ${e instanceof Failure ? e.message : e.stack}`);
    }
    // what a failed case left open must not fail the next ones
    w.Conn.destroyAll();
  }
  process.exit(failed ? 1 : 0);
})();
