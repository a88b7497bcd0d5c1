'use strict';
// registry_stub.js -- a stand-in for Decentraland's profile registry, for the registry scenario of
// test/e2e/run.sh.
//
//   node registry_stub.js --mode-file FILE --port-file FILE --log-file FILE
//
// Serves POST <prefix>/profiles with body {"ids":[...]}. What it answers is read from --mode-file
// on every request, so a test switches behaviour by rewriting it (atomically):
//   good      a JSON array with one profile per requested id, in the registry's shape:
//             avatars[0] = {userId, name: "name-<last 6 hex>", hasClaimedName: true,
//             nameColor {r:1,g:0.5,b:0}, avatar.snapshots.face256: "https://img/<id>.png"}
//   garbage   status 200 with a body that is not JSON
//   status N  status N with a small JSON error body
//   hang      accept the request and never answer (the client's timeout must fire)
// --log-file gets one line per request once it has been handled: "<mode> <n ids> <ids,...>".
// --port-file gets the listening port (port 0: no race for a free port). SIGTERM stops it.
// Node.js built-ins only.

const fs = require('fs');
const http = require('http');
const path = require('path');

const opts = {};
for (let i = 2; i < process.argv.length; i += 2) opts[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['mode-file', 'port-file', 'log-file']) {
	if (!opts[k]) {
		process.stderr.write(`registry_stub: --${k} is required\n`);
		process.exit(2);
	}
}
const hung = new Set();

function writeAtomic(file, text) {
	const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
	fs.writeFileSync(tmp, text);
	fs.renameSync(tmp, file);
}

function mode() {
	try {
		return fs.readFileSync(opts['mode-file'], 'utf8').trim();
	} catch (e) {
		return 'status 500';
	}
}

function profile(id) {
	return {
		timestamp: 1,
		avatars: [{
			userId: id,
			name: `name-${id.slice(-6)}`,
			unclaimedName: 'ignored',
			hasClaimedName: true,
			nameColor: { r: 1, g: 0.5, b: 0 },
			avatar: { snapshots: { face256: `https://img/${id}.png`, body: 'x' } },
		}],
	};
}

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		let ids = [];
		try {
			ids = JSON.parse(Buffer.concat(chunks).toString('utf8')).ids || [];
		} catch (e) {
			ids = ['<bad request body>'];
		}
		const m = mode();
		const log = () => fs.appendFileSync(opts['log-file'], `${m.replace(' ', '')} ${ids.length} ${ids.join(',')}\n`);
		if (req.method !== 'POST' || !req.url.split('?')[0].endsWith('/profiles')) {
			res.writeHead(404);
			res.end();
			return;
		}
		if (m === 'hang') {
			hung.add(req.socket);
			req.socket.on('close', () => hung.delete(req.socket));
			log();
			return;
		}
		let status = 200;
		let body;
		if (m === 'good') body = JSON.stringify(ids.map(profile));
		else if (m === 'garbage') body = '<html>this is not JSON';
		else {
			status = Number((/^status (\d{3})$/.exec(m) || [])[1] || 500);
			body = '{"error":"stub"}';
		}
		res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
		res.end(body, log);
	});
});

server.on('error', (e) => {
	process.stderr.write(`registry_stub: ${e.message}\n`);
	process.exit(1);
});
server.listen(0, '127.0.0.1', () => writeAtomic(opts['port-file'], `${server.address().port}\n`));

function stop() {
	for (const s of hung) s.destroy();
	server.close(() => process.exit(0));
	setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
