'use strict';
// archipelago_stub.js -- a stand-in for Archipelago's stats server, for test/e2e/presence.sh.
//
//   node archipelago_stub.js --peers-file FILE --port-file FILE [--count-file FILE] [--port N]
//
// Serves GET <prefix>/peers with the bytes of --peers-file, read again on every request, so a
// test changes what the daemon sees by rewriting that file (write a temp file and rename it, so a
// request never reads half a file). Any path ending in /peers is served; each prefix (the path
// before /peers, "" for /peers itself) has its own request counter, so two daemons polling
// different prefixes of one stub can be told apart.
//
// The first line of the peers file may be a directive instead of content:
//   #status N    answer with HTTP status N and the rest of the file as the body
//   #hang        accept the request and never answer (the poller's timeout must fire)
//   #close       destroy the connection without an answer
// Anything else, junk included, is sent verbatim with status 200: testing what the daemon does
// with junk is the point.
//
// Readiness and bookkeeping, so the test waits for conditions and never for time:
//   --port-file   gets the listening port once the server accepts connections (listen on port 0
//                 unless --port is given, so there is no race for a free port);
//   --count-file  after each /peers request has been answered (or hung/closed), rewritten with
//                 one line per prefix "PREFIX COUNT" ("-" for the empty prefix), sorted.
// SIGTERM and SIGINT stop it with exit 0. Node.js built-ins only.

const fs = require('fs');
const http = require('http');
const path = require('path');

function usage(msg) {
	process.stderr.write(`archipelago_stub: ${msg}\n` +
		'usage: node archipelago_stub.js --peers-file FILE --port-file FILE ' +
		'[--count-file FILE] [--port N]\n');
	process.exit(2);
}

function parseArgs(argv) {
	const opts = { port: 0 };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const next = () => {
			if (i + 1 >= argv.length) usage(`${a} needs a value`);
			return argv[++i];
		};
		if (a === '--peers-file') opts.peersFile = next();
		else if (a === '--port-file') opts.portFile = next();
		else if (a === '--count-file') opts.countFile = next();
		else if (a === '--port') {
			opts.port = Number(next());
			if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('bad --port');
		} else usage(`unknown argument '${a}'`);
	}
	if (!opts.peersFile) usage('--peers-file is required');
	if (!opts.portFile) usage('--port-file is required');
	return opts;
}

const opts = parseArgs(process.argv.slice(2));
const counts = new Map();
const hung = new Set();

// Written to a temp file and renamed: a reader never sees a partial file.
function writeAtomic(file, text) {
	const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
	fs.writeFileSync(tmp, text);
	fs.renameSync(tmp, file);
}

function countRequest(prefix) {
	counts.set(prefix, (counts.get(prefix) || 0) + 1);
	if (!opts.countFile) return;
	const lines = [...counts.entries()]
		.map(([p, n]) => `${p === '' ? '-' : p} ${n}`)
		.sort();
	writeAtomic(opts.countFile, lines.join('\n') + '\n');
}

function readPeers() {
	try {
		return fs.readFileSync(opts.peersFile);
	} catch (e) {
		return null;
	}
}

const server = http.createServer((req, res) => {
	const url = req.url.split('?')[0];
	if (req.method !== 'GET' || !url.endsWith('/peers')) {
		res.writeHead(404, { 'content-type': 'text/plain' });
		res.end('not found\n');
		return;
	}
	const prefix = url.slice(0, -'/peers'.length);
	const body = readPeers();
	if (body === null) {
		res.writeHead(500, { 'content-type': 'text/plain' });
		res.end('the stub has no peers file\n');
		countRequest(prefix);
		return;
	}
	let status = 200;
	let content = body;
	const nl = body.indexOf(10);
	const first = (nl < 0 ? body : body.subarray(0, nl)).toString('latin1').trim();
	const rest = nl < 0 ? Buffer.alloc(0) : body.subarray(nl + 1);
	if (first === '#hang') {
		// Never answered; the socket is remembered only so that shutdown can close it.
		hung.add(req.socket);
		req.socket.on('close', () => hung.delete(req.socket));
		countRequest(prefix);
		return;
	}
	if (first === '#close') {
		req.socket.destroy();
		countRequest(prefix);
		return;
	}
	const m = /^#status (\d{3})$/.exec(first);
	if (m) {
		status = Number(m[1]);
		content = rest;
	}
	res.writeHead(status, { 'content-type': 'application/json', 'content-length': content.length });
	res.end(content, () => countRequest(prefix));
});

server.keepAliveTimeout = 5000;
server.on('error', (e) => {
	process.stderr.write(`archipelago_stub: ${e.message}\n`);
	process.exit(1);
});
server.listen(opts.port, '127.0.0.1', () => {
	writeAtomic(opts.portFile, `${server.address().port}\n`);
});

function stop() {
	for (const s of hung) s.destroy();
	server.close(() => process.exit(0));
	server.closeAllConnections && server.closeAllConnections();
	// Whatever still holds the server open must not keep the test waiting.
	setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
