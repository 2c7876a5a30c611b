/* flashsale page runtime: countdown, toggle polling with jitter, clock-skew
   correction from the Date and Age headers, backoff under pressure, and the
   buy button. No dependencies. */
(function () {
  'use strict';
  // The polling schedule: near the start a page polls every POLL_MIN plus up
  // to POLL_SPREAD ms; its first poll is due FIRST_POLL_LEAD ms before the
  // start plus its own jitter (up to JITTER ms). `capacity` and `rehearse`
  // model the same numbers (src/sale/polling.rs; a test holds them equal).
  var POLL_MIN = 1000, POLL_SPREAD = 2000, FIRST_POLL_LEAD = 2000, JITTER = 3000;
  var body = document.body, data = body.dataset;
  var start = +data.saleStart, end = +data.saleEnd, toggleUrl = data.toggle;
  var state = 'pending', version = '', timer = 0, ticker = 0;
  // A fair start: orders until drawUntil are entries of a draw (see the gate),
  // whose secret opens drawCommitment; the gate signs each entry a receipt.
  var drawUntil = 0, drawCommitment = '', receipt = null;
  // Server minus client clock, narrowed by every response: the server's clock read
  // `date` (1 s resolution) at some moment between our send (t0) and receipt (t1).
  var lo = -Infinity, hi = Infinity, skew = 0;
  // Failed polls in a row (429, 503, no answer): the next waits longer.
  var failures = 0;
  // Each client's own offset around the start, so polls spread over 3 s.
  var jitter = Math.random() * JITTER;

  // Every word the runtime shows, in the page's language: the page carries
  // its catalogue's `js_` messages (site::i18n), plural forms by CLDR
  // category, `{name}` filled in.
  var messages = {}, plurals = null;
  try { messages = JSON.parse(document.getElementById('fs-messages').textContent); } catch (err) { /* a theme without them */ }
  try { plurals = new Intl.PluralRules(document.documentElement.lang || undefined); } catch (err) { /* no Intl */ }
  function msg(key, vars) {
    var m = messages[key];
    vars = vars || {};
    if (m && typeof m === 'object') m = m[plurals && vars.count !== undefined ? plurals.select(vars.count) : 'other'] || m.other;
    if (typeof m !== 'string') return key;
    return m.replace(/\{(\w+)\}/g, function (all, name) { return vars[name] !== undefined ? vars[name] : all; });
  }

  function now() { return Date.now() + skew; }
  function each(sel, f) { Array.prototype.forEach.call(document.querySelectorAll(sel), f); }
  function text(sel, s) { each(sel, function (e) { e.textContent = s; }); }

  // A cached answer carries the origin's Date and its Age in the cache (both
  // whole seconds): the server's clock read date + age at receipt, give or
  // take the two roundings.
  function learnClock(date, age, t0, t1) {
    if (isNaN(date)) return;
    date += age * 1000;
    var l = date - t1, h = date + (age > 0 ? 2000 : 1000) - t0;
    if (l > hi || h < lo) { lo = l; hi = h; } // the server clock jumped: start over
    else { lo = Math.max(lo, l); hi = Math.min(hi, h); }
    skew = (lo + hi) / 2;
  }

  function fetchToggle() {
    clearTimeout(timer);
    var t0 = Date.now();
    var sep = toggleUrl.indexOf('?') < 0 ? '?' : '&';
    return fetch(toggleUrl + sep + 'v=' + Math.random().toString(36).slice(2), { cache: 'no-store' })
      .then(function (r) {
        var age = parseInt(r.headers.get('Age') || '0', 10) || 0;
        learnClock(Date.parse(r.headers.get('Date') || ''), age, t0, Date.now());
        if (!r.ok) throw new Error('toggle: HTTP ' + r.status);
        return r.text();
      })
      .then(function (s) {
        apply(JSON.parse(s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'))));
        failures = 0;
      })
      // Throttled or unreachable: the next poll waits longer (see schedule).
      .catch(function () { failures += 1; })
      .then(schedule);
  }

  function apply(t) {
    if (!t || t.v === version) return;
    version = t.v;
    state = t.state;
    body.setAttribute('data-state', state);
    if (state === 'pending' && t.start) start = t.start;
    if (state === 'open') {
      if (t.end) end = t.end;
      drawUntil = t.draw ? t.draw.until : 0;
      drawCommitment = t.draw ? t.draw.commitment : '';
      // The item in the query string too: an edge function in front of
      // the gates sees no body (the gate reads either).
      each('[data-order-form]', function (f) {
        var sku = f.querySelector('[name=sku]');
        f.action = t.order + (sku ? '?sku=' + encodeURIComponent(sku.value) : '');
      });
      each('[data-buy]', function (b) { b.disabled = false; });
      text('[data-status]', msg('js_on_sale'));
    } else {
      each('[data-buy]', function (b) { b.disabled = true; });
    }
    // Ended: its own message (with a link) replaces the status, once; the
    // stock line says what is left: nothing.
    each('[data-ended]', function (e) { e.hidden = state !== 'ended'; });
    each('[data-status]', function (e) { e.hidden = state === 'ended'; });
    if (state === 'ended') text('[data-stock]', msg('js_sold_out'));
    tick();
  }

  // When to ask for the toggle next: near the start every client polls at its
  // own random moments; far from it nobody polls, but we wake up at least
  // once a minute so a suspended laptop does not sleep through the start.
  // After failures, exponential backoff with full jitter: 1, 2, 4 ... up to
  // 30 s, so a throttled origin or CDN is not hammered by every page at once.
  function backoff(n) {
    return Math.random() * Math.min(30000, 1000 * Math.pow(2, n));
  }

  function schedule() {
    clearTimeout(timer);
    if (state === 'ended') return;
    if (failures > 0) {
      timer = setTimeout(fetchToggle, Math.max(500, backoff(failures)));
      return;
    }
    var delay, fetchNext = true;
    if (state === 'open') {
      // Watch for "ended": sold out any time, and closed soon after the end.
      delay = Math.min(10000 + Math.random() * 20000, Math.max(0, end - now()) + 500 + jitter);
    } else {
      var due = start - FIRST_POLL_LEAD + jitter - now();
      if (due > 60000) { delay = 60000; fetchNext = false; }
      else if (due > 0) delay = due;
      else delay = (due > -60000 ? POLL_MIN + Math.random() * POLL_SPREAD : 5000 + Math.random() * 10000);
    }
    timer = setTimeout(fetchNext ? fetchToggle : schedule, delay);
  }

  function pad(n) { return (n < 10 ? '0' : '') + n; }
  // A moment as the reader's wall clock shows it, to the second.
  function clock(ms) {
    var d = new Date(ms);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  // The start in the reader's own time zone (the page says it in the
  // announced zone, for readers without JavaScript).
  each('[data-status] time', function (e) {
    var t = Date.parse(e.getAttribute('datetime'));
    if (isNaN(t) || !window.Intl) return;
    try {
      e.textContent = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
        weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZoneName: 'short'
      }).format(new Date(t));
    } catch (err) { /* keep the announced time */ }
  });

  function tick() {
    clearTimeout(ticker);
    var show = state === 'pending';
    each('[data-countdown]', function (e) { e.hidden = !show; });
    if (!show) return;
    var left = Math.max(0, Math.ceil((start - now()) / 1000));
    var d = Math.floor(left / 86400), h = Math.floor(left / 3600) % 24, m = Math.floor(left / 60) % 60, s = left % 60;
    text('[data-countdown]', left > 0
      ? msg('js_starts_in', { time: (d ? msg('js_days', { count: d }) + ' ' : '') + pad(h) + ':' + pad(m) + ':' + pad(s) })
      : msg('js_starting'));
    ticker = setTimeout(tick, 1000 - (now() % 1000) + 5);
  }

  // Orders go to the gate with fetch, and the answer shows in the page. Without
  // JavaScript (or fetch) the form posts itself and the gate redirects.
  var answers = {
    401: 'js_sign_in',
    403: 'js_not_open'
  };
  // Busy gates (429, 503, no answer): the button comes back after a wait that
  // doubles with each busy answer, so nobody's clicks become a storm.
  var busy = 0;
  function retryLater(button, what) {
    busy += 1;
    var wait = 1000 + backoff(busy);
    var until = Date.now() + wait;
    (function countdown() {
      var left = Math.ceil((until - Date.now()) / 1000);
      if (left > 0) {
        text('[data-result]', msg('js_try_again_in', { what: what, count: left }));
        setTimeout(countdown, 250);
      } else {
        text('[data-result]', msg('js_try_again_now', { what: what }));
        if (button && state === 'open') button.disabled = false;
      }
    })();
  }
  each('[data-order-form]', function (form) {
    form.addEventListener('submit', function (e) {
      if (!window.fetch || !form.action || state !== 'open') return;
      e.preventDefault();
      var button = form.querySelector('[data-buy]');
      if (button) button.disabled = true;
      // In a fair start's window the answer comes when the draw is done.
      var entering = drawUntil && now() < drawUntil;
      if (entering) body.setAttribute('data-outcome', 'entered');
      text('[data-result]', entering
        ? msg('js_in_draw', { time: clock(drawUntil) })
        : msg('js_sending'));
      each('[data-result]', function (r) { r.hidden = false; });
      var sent = new URLSearchParams(new FormData(form));
      // In the window: the receipt at once, then the result on asking again.
      var asking = entering && !receipt;
      if (asking) sent.append('receipt', '1');
      fetch(form.action, {
        method: 'POST',
        body: sent,
        headers: { Accept: 'application/json' },
        credentials: 'include'
      }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) { j.code = r.status; return j; });
      }).then(function (j) {
        if (j.code === 429 || j.code === 503) {
          retryLater(button, msg('js_busy'));
          return;
        }
        busy = 0;
        if (j.status === 'entered') {
          // In the draw, with a receipt: ask again at once (that request is
          // held and answered when the draw is done); if another tab's is
          // held already, ask again after result_at, spread over a second.
          body.setAttribute('data-outcome', 'entered');
          if (j.receipt) keepReceipt(j.receipt);
          text('[data-result]', msg('js_in_draw', { time: clock(j.result_at) }));
          setTimeout(function () {
            if (button) button.disabled = false;
            if (form.requestSubmit) form.requestSubmit();
          }, asking && receipt ? 0 : Math.max(0, j.result_at - now()) + Math.random() * 1000);
          return;
        }
        if (j.status === 'won' || j.status === 'sold_out' || j.status === 'not_drawn') {
          body.setAttribute('data-outcome', j.status);
          text('[data-result]', j.status === 'won'
            // On a right-to-left page the order id is isolated (FSI … PDI),
            // so the sentence keeps "preview-000001" in one piece.
            ? msg('js_won', { order: document.documentElement.dir === 'rtl' ? '\u2068' + j.order + '\u2069' : j.order })
            : j.status === 'not_drawn'
              ? msg('js_not_drawn')
              : msg('js_too_late'));
          if (j.status !== 'won') text('[data-stock]', msg('js_sold_out'));
          var kept = receipt || storedReceipt(new FormData(form).get('sku'));
          if (kept) checkDraw(kept, 0);
          // The sale may be ending: look at the toggle again soon.
          clearTimeout(timer);
          timer = setTimeout(fetchToggle, POLL_MIN + Math.random() * POLL_SPREAD);
        } else {
          text('[data-result]', msg(answers[j.code] || 'js_went_wrong'));
          if (button) button.disabled = false;
        }
      }).catch(function () {
        retryLater(button, msg('js_network'));
      });
    });
  });

  // Receipts: kept in the page and in localStorage (a reload keeps them).
  function keepReceipt(r) {
    receipt = r;
    try { localStorage.setItem('flashsale-receipt:' + r.sale + ':' + r.sku, JSON.stringify(r)); } catch (err) { /* private mode */ }
  }
  // A receipt kept before a reload, for this item.
  function storedReceipt(sku) {
    try {
      for (var i = 0; i < localStorage.length; i++) {
        var k = localStorage.key(i);
        if (k.indexOf('flashsale-receipt:') === 0 && k.slice(-sku.length - 1) === ':' + sku) return JSON.parse(localStorage.getItem(k));
      }
    } catch (err) { /* private mode, or not JSON */ }
    return null;
  }
  function hex(buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) { return (b < 16 ? '0' : '') + b.toString(16); }).join('');
  }
  function sha(data) {
    return crypto.subtle.digest('SHA-256', typeof data === 'string' ? new TextEncoder().encode(data) : data).then(hex);
  }
  function bytes(h) {
    return new Uint8Array(h.match(/../g).map(function (b) { return parseInt(b, 16); }));
  }
  // After the draw: the published draw.json (next to sale.js) must hold our
  // leaf, and its winners follow from its inputs: the secret opens the
  // commitment announced at the start, the root opens the leaves, the seed
  // and the lowest tickets are recomputed here (see src/sale/draw.rs).
  function checkDraw(r, tries) {
    var say = function (s, how) {
      each('[data-draw-check]', function (e) { e.textContent = s; e.hidden = false; e.setAttribute('data-check', how); });
    };
    if (!window.crypto || !crypto.subtle) return;
    fetch(new URL('draw.json', new URL(toggleUrl, location.href)), { cache: 'no-store' }).then(function (res) {
      if (!res.ok) throw new Error('draw.json: HTTP ' + res.status);
      return res.json();
    }).then(function (p) {
      var item = (p.items || []).filter(function (i) { return i.sku === r.sku; })[0];
      if (!item || p.sale !== r.sale || p.round !== r.round || item.leaves.indexOf(r.leaf) < 0) {
        say(msg('js_draw_missing'), 'missing');
        return;
      }
      var seed;
      return Promise.all([sha(bytes(p.secret)), sha(item.leaves.join('\n'))]).then(function (h) {
        if (h[0] !== drawCommitment && drawCommitment) throw new Error('commitment');
        if (h[1] !== item.root) throw new Error('root');
        return sha(['flashsale-draw', p.sale, p.round, item.sku, p.secret, h[1]].join('|'));
      }).then(function (s) {
        seed = s;
        if (seed !== item.seed) throw new Error('seed');
        return Promise.all(item.leaves.map(function (l) { return sha(seed + '|' + l).then(function (t) { return t + l; }); }));
      }).then(function (tickets) {
        var drawn = tickets.sort().slice(0, item.units).map(function (t) { return t.slice(64); });
        if (drawn.join() !== item.winners.join()) throw new Error('winners');
        say(msg('js_draw_checked', { count: item.entrants }), 'ok');
      }).catch(function (e) {
        say(msg('js_draw_failed', { count: item.entrants, why: e.message }), 'failed');
      });
    }).catch(function () {
      // Not published yet: look again, for up to two minutes.
      if (tries < 40) setTimeout(function () { checkDraw(r, tries + 1); }, 3000);
    });
  }

  document.addEventListener('visibilitychange', function () {
    if (!document.hidden && state !== 'ended') setTimeout(fetchToggle, Math.random() * 1000);
  });
  // Exposed for tests and for a theme's own scripts.
  window.flashsaleRuntime = {
    state: function () { return state; }, skew: function () { return skew; }, refresh: fetchToggle,
    checkDraw: function () { if (receipt) checkDraw(receipt, 0); }
  };
  tick();
  fetchToggle();
})();
