#!/usr/bin/env node
// Writes the golden vectors the unit tests read (auth_vectors.json, rpc_vectors.json,
// social_vectors.json, social_v2_fields.txt) into this directory.
//
// Every hash, key, address, signature, frame and encoded message is computed here by the pinned
// official client packages of test/compat (@dcl/crypto, @dcl/rpc, @dcl/protocol), so the tests
// compare our C against what real clients produce, not against our own reading of the protocol.
// Only the inputs (keys, messages, clocks) and the hand-made broken frames are written literally.
//
// Usage: (cd test/compat && npm ci) && node test/vectors/generate.js
// The output is deterministic (RFC 6979 signatures, fixed clocks): regenerating must not change
// the committed files unless a package pin changed.
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { createRequire } = require('node:module')

const OUT = __dirname
const COMPAT = path.join(__dirname, '..', 'compat')
const requireCompat = createRequire(path.join(COMPAT, 'package.json'))

function need(id) {
  try {
    return requireCompat(id)
  } catch (err) {
    console.error(`generate.js: cannot load ${id} (${err.code || err.message}); run: cd test/compat && npm ci`)
    process.exit(1)
  }
}

const { Authenticator, AuthLinkType } = need('@dcl/crypto')
const dclCrypto = need('@dcl/crypto/dist/crypto')
const { secp256k1 } = need('ethereum-cryptography/secp256k1')
const { keccak256 } = need('ethereum-cryptography/keccak')
const rpc = need('@dcl/rpc/dist/protocol')
const { calculateMessageIdentifier } = need('@dcl/rpc/dist/protocol/helpers')
const social = need('@dcl/protocol/out-js/decentraland/social_service/v2/social_service_v2.gen')
const protobuf = need('protobufjs')

const hex = (bytes) => Buffer.from(bytes).toString('hex')
const hex0x = (bytes) => '0x' + hex(bytes)
const fromHex = (s) => Uint8Array.from(Buffer.from(s.replace(/^0x/, ''), 'hex'))
const utf8 = (s) => new TextEncoder().encode(s)

function write(file, value) {
  const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2) + '\n'
  fs.writeFileSync(path.join(OUT, file), text)
  console.log(`wrote test/vectors/${file}`)
}

// ---- auth_vectors.json

// Well-known test keys; never funded, never secret.
const OWNER_KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318'
const EPHEMERAL_KEY = '0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'
// 2026-01-01T00:00:00Z: the signed timestamp; the verifier's clock runs one second later.
const TIMESTAMP_MS = 1767225600000
const NOW_MS = TIMESTAMP_MS + 1000
const WINDOW_MS = 300000
const EXPIRATION = new Date('2030-01-01T00:00:00.000Z')

function identity(privateKey) {
  const pub = secp256k1.getPublicKey(fromHex(privateKey), false)
  return {
    privateKey,
    publicKeyUncompressed: hex0x(pub),
    publicKey: hex0x(pub.slice(1)),
    address: dclCrypto.computeAddress(pub)
  }
}

function personalSignVector(id, message) {
  return {
    message,
    // Documents the bytes hashed; <message> stands for the UTF-8 message itself.
    prefixed: `\\x19Ethereum Signed Message:\\n${utf8(message).length}<message>`,
    hash: hex0x(dclCrypto.createEthereumMessageHash(message)),
    signature: Authenticator.createSignature(id, message),
    recovers: dclCrypto.recoverAddressFromEthSignature(Authenticator.createSignature(id, message), message)
  }
}

// The first WebSocket message of a client: the signedFetch headers of a `get /` as one JSON
// object, the same shape test/compat/compat.js sends.
function authFrame(chain, timestamp = TIMESTAMP_MS, metadata = '{}') {
  const headers = {}
  chain.forEach((link, i) => {
    headers[`x-identity-auth-chain-${i}`] = JSON.stringify(link)
  })
  headers['x-identity-timestamp'] = String(timestamp)
  headers['x-identity-metadata'] = metadata
  return JSON.stringify(headers)
}

// initializeAuthChain reads the wall clock for the expiration; build the same chain with a fixed
// expiration string so the vectors never change.
function ephemeralChain(owner, ephemeral, ephemeralMessage, signerAddress = owner.address) {
  return {
    ephemeralIdentity: ephemeral,
    expiration: EXPIRATION,
    authChain: [
      { type: AuthLinkType.SIGNER, payload: signerAddress, signature: '' },
      {
        type: AuthLinkType.ECDSA_PERSONAL_EPHEMERAL,
        payload: ephemeralMessage,
        signature: Authenticator.createSignature(owner, ephemeralMessage)
      }
    ]
  }
}

const SIGNED_PAYLOAD = ['get', '/', TIMESTAMP_MS, '{}'].join(':').toLowerCase()

// The official verifier must accept what we claim verifies; its "final authority" is the payload
// the last link signs.
async function checkAccepted(name, chain, nowMs) {
  const result = await Authenticator.validateSignature(SIGNED_PAYLOAD, chain, null, nowMs)
  if (!result.ok) {
    console.error(`generate.js: @dcl/crypto rejects ${name}: ${result.message}`)
    process.exit(1)
  }
}

async function authVectors() {
  const owner = identity(OWNER_KEY)
  const ephemeral = identity(EPHEMERAL_KEY)
  const ephMessage = Authenticator.getEphemeralMessage(ephemeral.address, EXPIRATION)

  const standard = ephemeralChain(owner, ephemeral, ephMessage)
  const chain = Authenticator.signPayload(standard, SIGNED_PAYLOAD)
  await checkAccepted('authMessage', chain, NOW_MS)

  // Unity clients write the expiration without milliseconds and without a zone.
  const unity = ephemeralChain(
    owner,
    ephemeral,
    `Decentraland Login\nEphemeral address: ${ephemeral.address}\nExpiration: 2030-01-01T00:00:00`
  )
  const unityChain = Authenticator.signPayload(unity, SIGNED_PAYLOAD)

  // Some clients send addresses lower-cased instead of EIP-55 mixed case.
  const lower = ephemeralChain(
    owner,
    ephemeral,
    Authenticator.getEphemeralMessage(ephemeral.address.toLowerCase(), EXPIRATION),
    owner.address.toLowerCase()
  )
  const lowerChain = Authenticator.signPayload(lower, SIGNED_PAYLOAD)
  await checkAccepted('authMessageLowercaseAddresses', lowerChain, NOW_MS)

  const frame = authFrame(chain)
  const forged = chain.map((link, i) =>
    i === 2 ? { ...link, signature: '0x' + '11'.repeat(32) + link.signature.slice(2 + 64) } : link
  )

  const pub = (id) => ({
    privateKey: id.privateKey,
    publicKeyUncompressed: id.publicKeyUncompressed,
    address: id.address
  })

  return {
    keccak256: {
      '': hex0x(keccak256(utf8(''))),
      abc: hex0x(keccak256(utf8('abc')))
    },
    owner: { ...pub(owner), addressLower: owner.address.toLowerCase() },
    ephemeral: pub(ephemeral),
    personalSign: [personalSignVector(owner, ephMessage), personalSignVector(ephemeral, SIGNED_PAYLOAD)],
    authMessage: {
      note: `first WebSocket frame (text or binary), UTF-8 JSON; verify with now = verifyNowMs and expiration window ${WINDOW_MS} ms`,
      verifyNowMs: NOW_MS,
      json: frame,
      expectedUser: owner.address.toLowerCase()
    },
    authMessageUnityStyleExpiration: {
      verifyNowMs: NOW_MS,
      json: authFrame(unityChain),
      expectedUser: owner.address.toLowerCase()
    },
    authMessageLowercaseAddresses: {
      verifyNowMs: NOW_MS,
      json: authFrame(lowerChain),
      expectedUser: owner.address.toLowerCase()
    },
    // Frames a verifier must refuse. The reasons are ours; test_auth.c matches on their words.
    mustReject: [
      {
        why: `timestamp outside +-${WINDOW_MS} ms of verifyNowMs`,
        json: frame,
        verifyNowMs: TIMESTAMP_MS + WINDOW_MS + 1
      },
      { why: 'signed-entity signature altered', json: authFrame(forged), verifyNowMs: NOW_MS },
      {
        why: 'metadata header not the signed one',
        json: authFrame(chain, TIMESTAMP_MS, '{"a":1}'),
        verifyNowMs: NOW_MS
      },
      {
        why: 'ephemeral key expired (now after 2030-01-01)',
        json: frame,
        verifyNowMs: EXPIRATION.getTime() + 1,
        ignoreTimestampWindow: true
      },
      { why: 'only one link', json: authFrame(chain.slice(0, 1)), verifyNowMs: NOW_MS },
      {
        why: 'first link is not SIGNER',
        json: authFrame([chain[1], chain[0], chain[2]]),
        verifyNowMs: NOW_MS
      }
    ]
  }
}

// ---- rpc_vectors.json

const T = rpc.RpcMessageTypes
// The encoder of each message type; SERVER_READY is a bare header.
const ENCODERS = {
  [T.RpcMessageTypes_SERVER_READY]: rpc.RpcMessageHeader,
  [T.RpcMessageTypes_CREATE_PORT]: rpc.CreatePort,
  [T.RpcMessageTypes_CREATE_PORT_RESPONSE]: rpc.CreatePortResponse,
  [T.RpcMessageTypes_REQUEST_MODULE]: rpc.RequestModule,
  [T.RpcMessageTypes_REQUEST_MODULE_RESPONSE]: rpc.RequestModuleResponse,
  [T.RpcMessageTypes_REQUEST]: rpc.Request,
  [T.RpcMessageTypes_RESPONSE]: rpc.Response,
  [T.RpcMessageTypes_REMOTE_ERROR_RESPONSE]: rpc.RemoteError,
  [T.RpcMessageTypes_STREAM_MESSAGE]: rpc.StreamMessage,
  [T.RpcMessageTypes_STREAM_ACK]: rpc.StreamMessage,
  [T.RpcMessageTypes_DESTROY_PORT]: rpc.DestroyPort
}

// Payloads are given in the messages' JSON form; ts-proto's fromPartial wants oneofs as {$case}.
const encodeSocial = (type, json) => social[type].encode(social[type].fromJSON(json)).finish()
const EMPTY = new Uint8Array(0)

function rpcVector(name, messageType, messageNumber, fields) {
  const messageIdentifier = calculateMessageIdentifier(messageType, messageNumber)
  const all = { messageIdentifier, ...fields }
  const bytes = ENCODERS[messageType].encode(ENCODERS[messageType].fromPartial(all)).finish()
  const shown = { ...all }
  if (shown.payload !== undefined) shown.payload = Buffer.from(shown.payload).toString('base64')
  return { name, messageType, messageNumber, messageIdentifier, fields: shown, hex: hex(bytes) }
}

function rpcVectors() {
  const port = 1
  const getFriends = 1
  const subscribe = 6
  const stream = (seq, payload, closed, ack) => ({
    portId: port,
    sequenceId: seq,
    payload,
    closed,
    ack
  })
  const abc = { address: '0xabc' }
  return [
    rpcVector('SERVER_READY (server->client, sent right after auth succeeds)', T.RpcMessageTypes_SERVER_READY, 0, {}),
    rpcVector('CreatePort (client->server)', T.RpcMessageTypes_CREATE_PORT, 1, { portName: 'social_service' }),
    rpcVector('CreatePortResponse', T.RpcMessageTypes_CREATE_PORT_RESPONSE, 1, { portId: port }),
    rpcVector('RequestModule', T.RpcMessageTypes_REQUEST_MODULE, 2, { portId: port, moduleName: 'SocialService' }),
    rpcVector('RequestModuleResponse (2 procedures shown)', T.RpcMessageTypes_REQUEST_MODULE_RESPONSE, 2, {
      portId: port,
      procedures: [
        { procedureId: getFriends, procedureName: 'GetFriends' },
        { procedureId: subscribe, procedureName: 'SubscribeToFriendshipUpdates' }
      ]
    }),
    rpcVector('Request unary GetFriends with empty payload', T.RpcMessageTypes_REQUEST, 3, {
      portId: port,
      procedureId: getFriends,
      clientStream: 0,
      payload: EMPTY
    }),
    rpcVector('Request GetFriends {pagination:{limit:10,offset:0}}', T.RpcMessageTypes_REQUEST, 4, {
      portId: port,
      procedureId: getFriends,
      clientStream: 0,
      payload: encodeSocial('GetFriendsPayload', { pagination: { limit: 10, offset: 0 } })
    }),
    rpcVector('Response (payload = encoded PaginatedFriendsProfilesResponse)', T.RpcMessageTypes_RESPONSE, 4, {
      payload: encodeSocial('PaginatedFriendsProfilesResponse', {
        friends: [abc],
        paginationData: { total: 1, page: 1 }
      })
    }),
    rpcVector('Response with empty payload (= default message)', T.RpcMessageTypes_RESPONSE, 5, { payload: EMPTY }),
    // The error text is the one @dcl/rpc's server throws for an unknown module (server.js).
    rpcVector('RemoteError', T.RpcMessageTypes_REMOTE_ERROR_RESPONSE, 6, {
      errorCode: 0,
      errorMessage: `Module X is not available for port social_service (${port}))`
    }),
    rpcVector('Request SubscribeToFriendshipUpdates (Empty payload)', T.RpcMessageTypes_REQUEST, 7, {
      portId: port,
      procedureId: subscribe,
      clientStream: 0,
      payload: EMPTY
    }),
    rpcVector('StreamMessage server OPEN/offer (seq 0, no payload)', T.RpcMessageTypes_STREAM_MESSAGE, 7, stream(0, EMPTY, false, false)),
    rpcVector('StreamMessage client ACK of offer (type STREAM_ACK, seq 0)', T.RpcMessageTypes_STREAM_ACK, 7, stream(0, EMPTY, false, true)),
    rpcVector(
      'StreamMessage server element seq 1 (payload = FriendshipUpdate)',
      T.RpcMessageTypes_STREAM_MESSAGE,
      7,
      stream(1, encodeSocial('FriendshipUpdate', { accept: { user: abc } }), false, false)
    ),
    rpcVector('StreamMessage client ACK seq 1', T.RpcMessageTypes_STREAM_ACK, 7, stream(1, EMPTY, false, true)),
    rpcVector(
      'StreamMessage client CLOSE (type STREAM_MESSAGE, closed=true, seq = last received)',
      T.RpcMessageTypes_STREAM_MESSAGE,
      7,
      stream(1, EMPTY, true, false)
    ),
    rpcVector('StreamMessage server CLOSE (end of stream, seq = last sent)', T.RpcMessageTypes_STREAM_MESSAGE, 7, stream(1, EMPTY, true, false)),
    rpcVector('DestroyPort (client->server, message number 0)', T.RpcMessageTypes_DESTROY_PORT, 0, { portId: port })
  ]
}

// ---- social_vectors.json

// json is what ts-proto's toJSON prints for the message (defaults included), hex its encoding.
function socialVector(name, type, input) {
  const message = social[type].fromJSON(input)
  return {
    name,
    type,
    json: social[type].toJSON(message),
    hex: hex(social[type].encode(message).finish())
  }
}

function socialVectors() {
  const address = '0x8e93837c7b28af66a70b13c03a36e4333e371073'
  const user = { address }
  const createdAt = TIMESTAMP_MS
  const request = { friend: { address }, createdAt, message: 'hi', id: 'uuid' }
  return [
    socialVector('UpsertFriendshipPayload request+message', 'UpsertFriendshipPayload', { request: { user, message: 'hi' } }),
    socialVector('UpsertFriendshipPayload accept', 'UpsertFriendshipPayload', { accept: { user } }),
    socialVector('UpsertFriendshipPayload reject', 'UpsertFriendshipPayload', { reject: { user } }),
    socialVector('UpsertFriendshipPayload delete', 'UpsertFriendshipPayload', { delete: { user } }),
    socialVector('UpsertFriendshipPayload cancel', 'UpsertFriendshipPayload', { cancel: { user } }),
    socialVector('UpsertFriendshipResponse accepted', 'UpsertFriendshipResponse', {
      accepted: { id: 'f8b3...', createdAt, friend: { address }, message: 'hi' }
    }),
    socialVector('UpsertFriendshipResponse invalidFriendshipAction', 'UpsertFriendshipResponse', {
      invalidFriendshipAction: { message: 'Invalid friendship action' }
    }),
    socialVector('FriendshipUpdate request', 'FriendshipUpdate', { request }),
    socialVector('FriendshipUpdate block', 'FriendshipUpdate', { block: { user } }),
    socialVector('GetFriendshipStatusPayload', 'GetFriendshipStatusPayload', { user }),
    socialVector('GetFriendshipStatusResponse ACCEPTED', 'GetFriendshipStatusResponse', { accepted: { status: 'ACCEPTED' } }),
    socialVector('GetFriendshipStatusResponse REQUEST_SENT(0)', 'GetFriendshipStatusResponse', {
      accepted: { status: 'REQUEST_SENT' }
    }),
    socialVector('PaginatedFriendshipRequestsResponse', 'PaginatedFriendshipRequestsResponse', {
      requests: { requests: [request] },
      paginationData: { total: 1, page: 1 }
    }),
    socialVector('FriendConnectivityUpdate OFFLINE', 'FriendConnectivityUpdate', { friend: { address }, status: 'OFFLINE' }),
    socialVector('FriendConnectivityUpdate ONLINE(0, field omitted)', 'FriendConnectivityUpdate', {
      friend: { address },
      status: 'ONLINE'
    }),
    socialVector('BlockUserPayload', 'BlockUserPayload', { user }),
    socialVector('BlockUserResponse ok', 'BlockUserResponse', { ok: { profile: { address, blockedAt: createdAt } } }),
    socialVector('BlockUpdate', 'BlockUpdate', { address, isBlocked: true }),
    socialVector('GetBlockingStatusResponse', 'GetBlockingStatusResponse', { blockedUsers: [address], blockedByUsers: [] })
  ]
}

// ---- social_v2_fields.txt
//
// The message, field and procedure table test_social_proto.c checks our .proto files against,
// read from the .proto files inside the pinned @dcl/protocol package.

// The pinned @dcl/protocol predates the subscription stream-close revision the reference service
// already speaks: a stream the server ends on its own (a second subscription to it on the same
// connection) gets a last element carrying stream_closed. Our protos follow that revision, so
// its additions are applied here, by hand, to the official definitions before they are printed.
const V2 = 'decentraland.social_service.v2'
function applyStreamCloseRevision(root) {
  const v2 = root.lookup(V2)
  const reason = new protobuf.Enum('SubscriptionStreamClosedReason', {
    STREAM_CLOSED_UNKNOWN: 0,
    STREAM_CLOSED_DUPLICATE_SUBSCRIPTION: 1
  })
  const closed = new protobuf.Type('SubscriptionStreamClosed')
  closed.add(new protobuf.Field('reason', 1, 'SubscriptionStreamClosedReason'))
  addOptional(closed, 'message', 2, 'string')
  v2.add(reason)
  v2.add(closed)
  const carriers = {
    FriendshipUpdate: 7,
    FriendConnectivityUpdate: 3,
    BlockUpdate: 3,
    CommunityMemberConnectivityUpdate: 4,
    PrivateVoiceChatUpdate: 6,
    CommunityVoiceChatUpdate: 10
  }
  for (const [message, id] of Object.entries(carriers)) {
    addOptional(v2.lookupType(message), 'stream_closed', id, 'SubscriptionStreamClosed')
  }
  root.resolveAll()
}

// proto3 `optional`, as protobufjs represents it: a synthetic one-field oneof.
function addOptional(type, name, id, fieldType) {
  const field = new protobuf.Field(name, id, fieldType, undefined, undefined, { proto3_optional: true })
  type.add(field)
  type.add(new protobuf.OneOf('_' + name, [name]))
}

function loadOfficialProtos() {
  const root = new protobuf.Root()
  const protoDir = path.join(path.dirname(requireCompat.resolve('@dcl/protocol/package.json')), 'proto')
  root.resolvePath = (origin, target) => {
    const local = path.join(protoDir, target)
    return fs.existsSync(local) ? local : protobuf.util.path.resolve(origin, target)
  }
  root.loadSync(path.join(protoDir, 'decentraland/social_service/v2/social_service_v2.proto'), { keepCase: true })
  root.resolveAll()
  return root
}

function label(field) {
  if (field.repeated) return '   [repeated]'
  if (field.options && field.options.proto3_optional) return '   [optional]'
  if (field.partOf) return `   [oneof ${field.partOf.name}]`
  return ''
}

// Messages and enums of one namespace, depth first, in declaration order; nested names are
// written Outer.Inner.
function printNamespace(ns, prefix, out) {
  for (const item of ns.nestedArray) {
    const name = prefix + item.name
    if (item instanceof protobuf.Type) {
      out.push(`message ${name}`)
      for (const f of item.fieldsArray) {
        out.push(`${String(f.id).padStart(4)}  ${f.name} : ${f.type}${label(f)}`)
      }
      out.push('')
      printNamespace(item, name + '.', out)
    } else if (item instanceof protobuf.Enum) {
      out.push(`enum ${name}`)
      for (const [k, v] of Object.entries(item.values)) out.push(`  ${k} = ${v}`)
      out.push('')
    }
  }
}

function fieldsTable() {
  const root = loadOfficialProtos()
  applyStreamCloseRevision(root)
  const version = requireCompat('@dcl/protocol/package.json').version
  const out = [
    `# SocialService v2 messages, fields, enums and procedures: @dcl/protocol ${version} plus the`,
    '# stream-close revision. Generated by test/vectors/generate.js; test_social_proto.c checks',
    '# proto/ against it. Field lines: number  name : type   [label].',
    '',
    '## Procedures (id = position in the service, from 1)',
    ''
  ]
  const service = root.lookupService(`${V2}.SocialService`)
  service.methodsArray.forEach((m, i) => {
    const response = m.responseStream ? `stream \`${m.responseType}\`` : `\`${m.responseType}\``
    out.push(`| ${i + 1} | \`${m.name}\` | \`${m.requestType}\` | ${response} |`)
  })
  out.push('')
  const files = [
    ['decentraland/common/colors.proto', 'decentraland.common'],
    ['decentraland/social_service/errors.proto', 'decentraland.social_service'],
    ['decentraland/social_service/v2/social_service_v2.proto', V2]
  ]
  for (const [file, pkg] of files) {
    out.push(`### ${file}`, '')
    const ns = root.lookup(pkg)
    // A package namespace also holds its sub-packages; print only this file's own types.
    const own = { nestedArray: ns.nestedArray.filter((n) => !(n instanceof protobuf.Namespace) || n instanceof protobuf.Type || n instanceof protobuf.Enum) }
    printNamespace(own, '', out)
  }
  return out.join('\n')
}

async function main() {
  write('auth_vectors.json', await authVectors())
  write('rpc_vectors.json', rpcVectors())
  write('social_vectors.json', socialVectors())
  write('social_v2_fields.txt', fieldsTable())
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
