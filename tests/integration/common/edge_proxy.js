// A stand-in for CloudFront in front of the gates, for the tests: runs the
// generated edge function (viewer request) on every /o/* request, answers
// what it answers, and forwards the rest to the gate unchanged. Its
// KeyValueStore is the stand-in's, read every 100 ms (CloudFront's edges
// hear of a change some time after it is made, too).
//
//   node edge_proxy.js FUNCTION.js KVS_BASE GATE_BASE PORT_FILE
//
// GET /__counts: how many order requests the edge answered and passed.
'use strict';
var http = require('http');
var fs = require('fs');
var crypto = require('crypto');
var args = process.argv.slice(2);
var code = fs.readFileSync(args[0], 'utf8').split('\n').filter(function (l) { return l.indexOf('import ') !== 0; }).join('\n');
var kvsBase = args[1], gate = new URL(args[2]), portFile = args[3];
var store = {};
var reads = 0;
function refresh() {
  http.get(kvsBase + '/dump', function (res) {
    var b = '';
    res.on('data', function (d) { b += d; });
    res.on('end', function () {
      try { store = JSON.parse(b).store; reads++; } catch (e) { /* next time */ }
      setTimeout(refresh, 100);
    });
  }).on('error', function () { setTimeout(refresh, 100); });
}
refresh();
var cf = { kvs: function () { return { get: async function (k) {
  if (!Object.prototype.hasOwnProperty.call(store, k)) throw new Error('key not found');
  return store[k];
} }; } };
var handler = new Function('cf', 'crypto', code + '\nreturn handler;')(cf, crypto);
var counts = { answered: 0, passed: 0, statuses: {} };

function add(to, k, v) {
  if (to[k]) { to[k].multiValue = to[k].multiValue || [{ value: to[k].value }]; to[k].multiValue.push({ value: v }); }
  else to[k] = { value: v };
}

function event(req) {
  var q = req.url.indexOf('?');
  var uri = q < 0 ? req.url : req.url.slice(0, q);
  var query = q < 0 ? '' : req.url.slice(q + 1);
  var headers = {}, cookies = {}, qs = {};
  for (var i = 0; i < req.rawHeaders.length; i += 2) {
    var n = req.rawHeaders[i].toLowerCase(), v = req.rawHeaders[i + 1];
    add(headers, n, v);
    if (n === 'cookie') v.split(';').forEach(function (p) {
      var eq = p.indexOf('=');
      if (eq > 0) add(cookies, p.slice(0, eq).trim(), p.slice(eq + 1).trim());
    });
  }
  if (query !== '') query.split('&').forEach(function (p) {
    var eq = p.indexOf('=');
    if (p !== '') add(qs, eq < 0 ? p : p.slice(0, eq), eq < 0 ? '' : p.slice(eq + 1));
  });
  return { version: '1.0', context: { eventType: 'viewer-request' }, viewer: { ip: '127.0.0.1' },
    request: { method: req.method, uri: uri, querystring: qs, headers: headers, cookies: cookies } };
}

var agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
var server = http.createServer(async function (req, res) {
  if (req.url === '/__counts') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ counts: counts, reads: reads, ended: Object.keys(store).some(function (k) { return /\|ended$/.test(k); }) }));
    return;
  }
  var body = [];
  req.on('data', function (d) { body.push(d); });
  await new Promise(function (ok) { req.on('end', ok); });
  var r = req.url.indexOf('/o/') === 0 ? await handler(event(req)) : null;
  if (r && r.statusCode !== undefined) {
    counts.answered++;
    counts.statuses[r.statusCode] = (counts.statuses[r.statusCode] || 0) + 1;
    var h = {};
    Object.keys(r.headers).forEach(function (k) { h[k] = r.headers[k].value; });
    res.writeHead(r.statusCode, h);
    res.end(r.body ? r.body.data : '');
    return;
  }
  if (req.url.indexOf('/o/') === 0) counts.passed++;
  var headers = Object.assign({}, req.headers, { host: gate.host });
  var up = http.request({ host: gate.hostname, port: gate.port, method: req.method, path: req.url, headers: headers, agent: agent }, function (g) {
    res.writeHead(g.statusCode, g.headers);
    g.pipe(res);
  });
  up.on('error', function (e) { res.writeHead(502); res.end(String(e)); });
  up.end(Buffer.concat(body));
});
server.listen(0, '127.0.0.1', function () { fs.writeFileSync(portFile, String(server.address().port)); });
