// compat.js -- sociald driven by the OFFICIAL Decentraland client libraries, the way the web and
// desktop explorers use them: @dcl/crypto builds the identity and the signed-fetch auth chain,
// @dcl/rpc's WebSocketTransport + createRpcClient + codegen loadService speak the protocol, and
// @dcl/protocol's generated SocialServiceDefinition encodes and decodes every message. Nothing
// on the wire is written by hand here, so whatever passes is what real clients get.
//
//   SOCIALD_URL=ws://127.0.0.1:PORT/ node compat.js
//
// Prints "compat: STEP ... ok" per step and ends with "compat: N passed, N failed". The first
// failing step ends the run (later steps depend on it). One safety-net timer turns a hang into
// a failure; no assertion depends on time.
'use strict'

const assert = require('node:assert/strict')
const WebSocket = require('ws')
const { createRpcClient } = require('@dcl/rpc')
const { WebSocketTransport } = require('@dcl/rpc/dist/transports/WebSocket')
const { loadService } = require('@dcl/rpc/dist/codegen')
const { Authenticator } = require('@dcl/crypto')
const { createUnsafeIdentity } = require('@dcl/crypto/dist/crypto')
const {
  SocialServiceDefinition,
  FriendshipStatus
} = require('@dcl/protocol/out-js/decentraland/social_service/v2/social_service_v2.gen')

const URL = process.env.SOCIALD_URL
const SAFETY_NET_MS = Number(process.env.COMPAT_TIMEOUT_MS || 60000)

let passed = 0
let failed = 0

// An identity as an explorer holds it after login: the owner wallet signs an ephemeral key
// (personal_sign) valid for some minutes.
async function newUser () {
  const owner = createUnsafeIdentity()
  const ephemeral = createUnsafeIdentity()
  const identity = await Authenticator.initializeAuthChain(owner.address, ephemeral, 60, async (message) =>
    Authenticator.createSignature(owner, message)
  )
  return { address: owner.address.toLowerCase(), identity }
}

// The signed-fetch headers of decentraland-crypto-fetch (signedHeaderFactory) for `get /` with
// metadata {}: the social service reads them from the first WebSocket message.
function authHeaders (identity) {
  const timestamp = String(Date.now())
  const metadata = JSON.stringify({})
  const payload = ['get', '/', timestamp, metadata].join(':').toLowerCase()
  const chain = Authenticator.signPayload(identity, payload)
  const headers = {}
  chain.forEach((link, i) => {
    headers[`x-identity-auth-chain-${i}`] = JSON.stringify(link)
  })
  headers['x-identity-timestamp'] = timestamp
  headers['x-identity-metadata'] = metadata
  return headers
}

async function connect (user) {
  const ws = new WebSocket(URL)
  const transport = WebSocketTransport(ws)
  // Queued by the transport and flushed first on open, as a binary frame, like the JS
  // explorers send it; CreatePort follows right behind it without waiting.
  transport.sendMessage(new TextEncoder().encode(JSON.stringify(authHeaders(user.identity))))
  const client = await createRpcClient(transport)
  const port = await client.createPort('social-compat')
  const social = loadService(port, SocialServiceDefinition)
  return { ws, social }
}

// Opens a server stream and returns its iterator once the daemon holds the subscription. The
// @dcl/rpc client sends the Request on the first next(); a unary call on the same connection,
// answered after it, proves the daemon has processed the Request (frames of a connection are
// handled in order).
async function subscribe (conn, method) {
  const it = conn.social[method]({})[Symbol.asyncIterator]()
  const first = it.next()
  await conn.social.getBlockingStatus({})
  return { it, first }
}

function paging (limit, offset) {
  return { pagination: { limit, offset } }
}

async function step (name, fn) {
  try {
    await fn()
    passed++
    console.log(`compat: ${name} ... ok`)
  } catch (err) {
    failed++
    console.log(`compat: ${name} ... FAILED`)
    console.error(err && err.stack ? err.stack : err)
    throw err
  }
}

async function main () {
  assert.ok(URL, 'SOCIALD_URL is not set')
  const alice = await newUser()
  const bob = await newUser()
  let a, b, friendshipStream, blockStream

  await step('connect and load SocialService', async () => {
    a = await connect(alice)
    b = await connect(bob)
    assert.equal(typeof a.social.getFriends, 'function')
  })

  await step('subscribe to friendship updates', async () => {
    friendshipStream = await subscribe(b, 'subscribeToFriendshipUpdates')
  })

  await step('request with a message', async () => {
    const res = await a.social.upsertFriendship({
      action: { $case: 'request', request: { user: { address: bob.address }, message: 'hello from compat' } }
    })
    assert.equal(res.response?.$case, 'accepted', JSON.stringify(res))
    assert.equal(res.response.accepted.friend?.address, bob.address)
    assert.ok(res.response.accepted.id.length > 0)
  })

  await step('the stream delivers the request', async () => {
    const { value, done } = await friendshipStream.first
    assert.notEqual(done, true, "the stream ended")
    assert.equal(value.update?.$case, 'request', JSON.stringify(value))
    assert.equal(value.update.request.friend?.address, alice.address)
    assert.equal(value.update.request.message, 'hello from compat')
    assert.ok(Number(value.update.request.createdAt) > 0)
  })

  await step('pending requests', async () => {
    const res = await b.social.getPendingFriendshipRequests(paging(10, 0))
    assert.equal(res.response?.$case, 'requests', JSON.stringify(res))
    assert.equal(res.response.requests.requests.length, 1)
    assert.equal(res.response.requests.requests[0].friend?.address, alice.address)
    assert.equal(res.response.requests.requests[0].message, 'hello from compat')
    assert.equal(res.paginationData?.total, 1)
  })

  await step('accept', async () => {
    const res = await b.social.upsertFriendship({
      action: { $case: 'accept', accept: { user: { address: alice.address } } }
    })
    assert.equal(res.response?.$case, 'accepted', JSON.stringify(res))
  })

  await step('friends list', async () => {
    const res = await a.social.getFriends(paging(10, 0))
    assert.deepEqual(res.friends.map((f) => f.address), [bob.address])
    assert.equal(res.paginationData?.total, 1)
    assert.equal(res.paginationData?.page, 1)
  })

  await step('friendship status', async () => {
    const res = await a.social.getFriendshipStatus({ user: { address: bob.address } })
    assert.equal(res.response?.$case, 'accepted', JSON.stringify(res))
    assert.equal(res.response.accepted.status, FriendshipStatus.ACCEPTED)
  })

  await step('subscribe to block updates', async () => {
    blockStream = await subscribe(b, 'subscribeToBlockUpdates')
  })

  await step('block', async () => {
    const res = await a.social.blockUser({ user: { address: bob.address } })
    assert.equal(res.response?.$case, 'ok', JSON.stringify(res))
    assert.equal(res.response.ok.profile?.address, bob.address)
    const { value } = await blockStream.first
    assert.equal(value.address, alice.address)
    assert.equal(value.isBlocked, true)
    const status = await b.social.getFriendshipStatus({ user: { address: alice.address } })
    assert.equal(status.response?.accepted?.status, FriendshipStatus.BLOCKED_BY, JSON.stringify(status))
  })

  await step('blocked users', async () => {
    const res = await a.social.getBlockedUsers(paging(10, 0))
    assert.deepEqual(res.profiles.map((p) => p.address), [bob.address])
    assert.equal(res.paginationData?.total, 1)
    const status = await a.social.getBlockingStatus({})
    assert.deepEqual(status.blockedUsers, [bob.address])
    assert.deepEqual(status.blockedByUsers, [])
  })

  await step('a friendship action while blocked is refused', async () => {
    const res = await b.social.upsertFriendship({
      action: { $case: 'request', request: { user: { address: alice.address } } }
    })
    assert.equal(res.response?.$case, 'invalidFriendshipAction', JSON.stringify(res))
  })

  await step('unblock', async () => {
    const res = await a.social.unblockUser({ user: { address: bob.address } })
    assert.equal(res.response?.$case, 'ok', JSON.stringify(res))
    const { value } = await blockStream.it.next()
    assert.equal(value.address, alice.address)
    assert.equal(value.isBlocked, false)
    const blocked = await a.social.getBlockedUsers(paging(10, 0))
    assert.deepEqual(blocked.profiles, [])
  })

  await step('cancel the streams and close', async () => {
    await friendshipStream.it.return(undefined)
    await blockStream.it.return(undefined)
    // the connection still answers after its streams were cancelled
    const res = await b.social.getFriends(paging(10, 0))
    assert.deepEqual(res.friends, [])
    for (const c of [a, b]) {
      const closed = new Promise((resolve) => c.ws.once('close', resolve))
      c.ws.close()
      await closed
    }
  })
}

const timer = setTimeout(() => {
  console.log(`compat: gave up after ${SAFETY_NET_MS} ms (a step never finished) ... FAILED`)
  console.log(`compat: ${passed} passed, ${failed + 1} failed`)
  process.exit(1)
}, SAFETY_NET_MS)

main().then(
  () => {
    clearTimeout(timer)
    console.log(`compat: ${passed} passed, ${failed} failed`)
    process.exit(failed === 0 ? 0 : 1)
  },
  () => {
    clearTimeout(timer)
    console.log(`compat: ${passed} passed, ${failed || 1} failed`)
    process.exit(1)
  }
)
