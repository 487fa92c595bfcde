/**
 * The console's browser script, served as /ui/app.js: plain ES2017, no framework, no build.
 * It fills each page from /ui/api/ and builds every element with textContent, never
 * innerHTML, so a message body or error text cannot inject markup. Actions send the page's
 * CSRF token in X-Orbit-CSRF and ask for confirmation, with the count, first.
 */
export const CLIENT_SCRIPT = String.raw`(function () {
  'use strict';
  function meta(name) { var m = document.querySelector('meta[name="' + name + '"]'); return m ? m.getAttribute('content') : ''; }
  var CSRF = meta('orbit-csrf');
  var READ_ONLY = meta('orbit-read-only') === 'true';
  var PAGE = document.body.getAttribute('data-page');
  var app = document.getElementById('app');
  var SVG = 'http://www.w3.org/2000/svg';

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'onclick') node.addEventListener('click', attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c !== null && c !== undefined) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function answer(r) {
    return r.json().catch(function () { return {}; }).then(function (body) {
      if (r.status === 401) { location.reload(); }
      if (!r.ok) { var e = new Error(body.error || ('HTTP ' + r.status)); e.status = r.status; throw e; }
      return body;
    });
  }
  function get(path) { return fetch('/ui/api/' + path, { credentials: 'same-origin', headers: { accept: 'application/json' } }).then(answer); }
  function post(path, body) {
    return fetch('/ui/api/' + path, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-orbit-csrf': CSRF, accept: 'application/json' },
      body: JSON.stringify(body)
    }).then(answer);
  }
  function show(nodes) { app.textContent = ''; nodes.forEach(function (n) { if (n) app.appendChild(n); }); }
  function fail(err) { show([el('p', { 'class': 'error', role: 'alert', text: 'Error: ' + err.message })]); }
  function num(n) { return n === null || n === undefined ? 'n/a' : Number(n).toLocaleString('en'); }
  function rate(n) { return n === null || n === undefined ? 'n/a' : (Math.round(n * 100) / 100).toString(); }
  function duration(ms) {
    var s = ms / 1000;
    if (s < 60) return Math.round(s) + 's';
    if (s < 3600) return Math.round(s / 60) + 'm';
    if (s < 86400) return Math.round(s / 360) / 10 + 'h';
    return Math.round(s / 8640) / 10 + 'd';
  }
  function table(headers, rows, numeric) {
    return el('table', {}, [
      el('thead', {}, [el('tr', {}, headers.map(function (h, i) { return el('th', { 'class': numeric && numeric[i] ? 'num' : '', text: h }); }))]),
      el('tbody', {}, rows.map(function (cells) {
        return el('tr', {}, cells.map(function (c, i) {
          var td = el('td', { 'class': numeric && numeric[i] ? 'num' : '' });
          if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? '' : String(c);
          return td;
        }));
      }))
    ]);
  }
  function card(label, value, bad) {
    return el('div', { 'class': 'card' + (bad ? ' bad' : ''), 'data-card': label }, [el('div', { 'class': 'muted', text: label }), el('div', { 'class': 'value', text: value })]);
  }

  // Overview
  function overview() {
    return get('overview').then(function (o) {
      show([
        el('h2', { text: 'Lanes' }),
        table(['Lane', 'Ready', 'In flight', 'Consumers', 'Runs/s', 'Failures/s', 'Lateness (mean)'], o.lanes.map(function (l) {
          return [l.lane, num(l.ready), num(l.inFlight), num(l.consumers), rate(l.runsPerSecond), rate(l.failuresPerSecond),
            l.meanLatenessSeconds === null ? 'n/a' : rate(l.meanLatenessSeconds) + ' s'];
        }), [false, true, true, true, true, true, true]),
        el('p', { 'class': 'muted', text: o.rates === 'n/a' ? 'Rates, in flight and lateness: n/a (orbit ui runs without a daemon; the broker keeps no rates).' : 'Rates, in flight and lateness are this daemon\'s; ready and consumers are the broker\'s.' }),
        el('h2', { text: 'Queues' }),
        el('div', { 'class': 'cards' }, [
          card('Dead', num(o.dead), o.dead > 0),
          card('Unroutable', num(o.unroutable), o.unroutable > 0),
          card('Broker alarm', o.alarm === null ? 'none' : o.alarm, o.alarm !== null)
        ]),
        o.notes.length ? el('h2', { text: 'Notes' }) : null,
        o.notes.length ? el('ul', {}, o.notes.map(function (n) { return el('li', { text: n }); })) : null,
        el('p', { 'class': 'muted', text: 'Sampled ' + o.sampledAt + ' · namespace ' + o.namespace })
      ]);
    });
  }

  // Schedule
  function barChart(bars) {
    var w = 560, h = 240, left = 70, bottom = 40, top = 20;
    var max = Math.max.apply(null, bars.map(function (b) { return b.value; }).concat([1]));
    var chart = svg('svg', { 'class': 'chart', width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, role: 'img', 'aria-label': 'Forecast: messages falling due' });
    chart.appendChild(svg('line', { x1: left, y1: h - bottom, x2: w - 10, y2: h - bottom, stroke: '#888' }));
    var slot = (w - left - 10) / bars.length;
    bars.forEach(function (b, i) {
      var bh = Math.round((h - bottom - top) * b.value / max);
      var x = left + i * slot + slot * 0.15;
      var rect = svg('rect', { x: x, y: h - bottom - bh, width: slot * 0.7, height: Math.max(bh, 1) });
      rect.appendChild(svg('title', {}, b.label + ': ' + num(b.value)));
      chart.appendChild(rect);
      chart.appendChild(svg('text', { x: x + slot * 0.35, y: h - bottom - bh - 5, 'text-anchor': 'middle' }, num(b.value)));
      chart.appendChild(svg('text', { x: x + slot * 0.35, y: h - bottom + 16, 'text-anchor': 'middle' }, b.label));
    });
    chart.appendChild(svg('text', { x: 4, y: top, 'text-anchor': 'start' }, 'messages'));
    return chart;
  }
  // Messages by the window their queue's messages fall due in (a queue counts whole in the
  // window of its latest due time); a ladder may have hundreds of rungs, so they are summed.
  function windows(levels) {
    var edges = [['within 1 minute', 60000], ['1 minute – 1 hour', 3600000], ['1 hour – 1 day', 86400000], ['1 day – 1 week', 604800000], ['later', Infinity]];
    var rows = edges.map(function (e) { return { label: e[0], upTo: e[1], queues: 0, messages: 0 }; });
    levels.forEach(function (l) {
      for (var i = 0; i < rows.length; i++) {
        if (l.dueWithinMs <= rows[i].upTo) { rows[i].queues++; rows[i].messages += l.messages; break; }
      }
    });
    return table(['Due window', 'Queues', 'Messages'], rows.map(function (r) { return [r.label, num(r.queues), num(r.messages)]; }), [false, true, true]);
  }
  function queueList(levels) {
    var total = levels.reduce(function (n, l) { return n + l.messages; }, 0);
    var details = el('details', { id: 'queues' }, [
      el('summary', { text: levels.length + ' delay queue(s) holding ' + num(total) + ' message(s)' }),
      table(['Queue', 'Messages', 'TTL', 'Due within'], levels.map(function (l) {
        return [l.queue, num(l.messages), duration(l.ttlMs), duration(l.dueWithinMs)];
      }), [false, true, true, true])
    ]);
    if (levels.length <= 20) details.setAttribute('open', '');
    return details;
  }
  function schedule() {
    return get('schedule').then(function (s) {
      show([
        el('h2', { text: 'Falling due (forecast)' }),
        barChart(s.forecast.map(function (f) { return { label: 'next ' + f.horizon, value: f.messages }; })),
        el('p', { 'class': 'muted', text: 'Estimated from the delay queues\' depths (the broker does not say when each message entered); includes the ' + num(s.readyNow) + ' ready now.' }),
        el('h2', { text: s.tolerance > 0 ? 'Delay queues (ladder rungs)' : 'Delay queues (binary levels)' }),
        windows(s.levels),
        queueList(s.levels),
        s.levels.length ? null : el('p', { 'class': 'muted', text: 'No delay queue exists yet: ladder rungs are declared when first used.' }),
        el('p', { 'class': 'muted', text: 'Sampled ' + s.sampledAt })
      ]);
    });
  }

  // Config
  function config() {
    return get('config').then(function (c) {
      show([el('h2', { text: 'Effective configuration (secrets redacted)' }), el('pre', { id: 'config', text: JSON.stringify(c, null, 2) })]);
    });
  }

  // Dead letters
  function deadLetters() {
    var params = new URLSearchParams(location.search);
    var state = {
      queue: params.get('queue') === 'unroutable' ? 'unroutable' : 'dead',
      offset: Number(params.get('offset') || 0), limit: 50,
      id: params.get('id') || '', lane: params.get('lane') || '', open: params.get('open') || ''
    };
    function go(next) {
      var q = new URLSearchParams();
      Object.keys(next).forEach(function (k) { if (next[k] !== '' && next[k] !== 0 && k !== 'limit') q.set(k, next[k]); });
      location.search = q.toString();
    }
    function filter() { var f = { queue: state.queue }; if (state.id) f.id = state.id; if (state.lane) f.lane = state.lane; return f; }
    function describeFilter() {
      var parts = [];
      if (state.id) parts.push('id ' + state.id);
      if (state.lane) parts.push('lane ' + state.lane);
      return parts.length ? ' matching ' + parts.join(' and ') : '';
    }
    function act(button, verb, path, body, count) {
      if (!window.confirm(verb + ' ' + count + '?')) return;
      button.disabled = true;
      post(path, body).then(function (r) {
        var done = r.replayed !== undefined ? 'Replayed ' + r.replayed : 'Purged ' + r.purged;
        window.alert(done + ' message(s).' + (r.left !== undefined ? ' ' + r.left + ' left in the queue.' : ''));
        go({ queue: state.queue, id: state.id, lane: state.lane, offset: 0, open: '' });
      }).catch(function (e) { button.disabled = false; window.alert('Failed: ' + e.message); });
    }
    function bulk(button, verb, path) {
      var q = new URLSearchParams(filter());
      get('dead/count?' + q.toString()).then(function (c) {
        // A filtered count looks at the first 10,000; an unfiltered replay handles the first 10,000 per click.
        var n = c.truncated ? c.count + ' (among the first 10,000 looked at; one click handles those)'
          : (path === 'dead/replay' && c.count > 10000 ? 'the first 10,000 of ' + c.count : String(c.count));
        act(button, verb, path, filter(), n + ' message(s) in ' + state.queue + describeFilter());
      }).catch(function (e) { window.alert('Failed: ' + e.message); });
    }
    function openMessage(id) {
      var box = document.getElementById('detail');
      box.textContent = 'Loading ' + id + '…';
      get('dead/message?' + new URLSearchParams({ queue: state.queue, id: id }).toString()).then(function (d) {
        var m = d.message;
        box.textContent = '';
        box.appendChild(el('h2', { text: 'Message ' + id }));
        box.appendChild(el('p', {}, [(m.row.lane || '-') + ' · ' + (m.row.code || '-') + ': ' + (m.row.error || '') + ' · attempts ' + (m.row.attempts === null ? '-' : m.row.attempts) + ' · ' + m.row.bytes + ' bytes']));
        if (!READ_ONLY) {
          var replay = el('button', { type: 'button', text: 'Replay' });
          replay.addEventListener('click', function () { act(replay, 'Replay', 'dead/replay', { queue: state.queue, id: id }, 'message ' + id + ' to lane ' + (m.row.lane || '?')); });
          box.appendChild(el('div', { 'class': 'toolbar' }, [replay]));
        }
        box.appendChild(el('h3', { text: 'Body (' + m.bodyKind + (m.bodyKind === 'binary' ? ', base64' : '') + (m.bodyTruncated ? ', cut' : '') + ')' }));
        box.appendChild(el('pre', { id: 'body', text: m.body }));
        if (m.hex) { box.appendChild(el('h3', { text: 'Body (hex, first 4 KiB)' })); box.appendChild(el('pre', { text: m.hex })); }
        box.appendChild(el('h3', { text: 'Headers' }));
        box.appendChild(el('pre', { id: 'headers', text: JSON.stringify(m.headers, null, 2) }));
        box.appendChild(el('h3', { text: 'Properties' }));
        box.appendChild(el('pre', { text: JSON.stringify(m.properties, null, 2) }));
      }).catch(function (e) { box.textContent = 'Error: ' + e.message; });
    }
    return Promise.all([get('dead?' + new URLSearchParams({ queue: state.queue, offset: state.offset, limit: state.limit, id: state.id, lane: state.lane }).toString()), get('session')]).then(function (both) {
      var p = both[0], session = both[1];
      var idInput = el('input', { type: 'search', name: 'id', placeholder: 'message id', 'aria-label': 'Search by id', value: state.id });
      var laneSelect = el('select', { name: 'lane', 'aria-label': 'Lane' }, [el('option', { value: '', text: 'all lanes' })].concat(session.lanes.map(function (l) {
        var o = el('option', { value: l, text: l }); if (l === state.lane) o.setAttribute('selected', ''); return o;
      })));
      var search = el('button', { type: 'submit', text: 'Search' });
      var form = el('form', { 'class': 'toolbar', role: 'search' }, [idInput, laneSelect, search]);
      form.addEventListener('submit', function (ev) { ev.preventDefault(); go({ queue: state.queue, id: idInput.value.trim(), lane: laneSelect.value, offset: 0 }); });
      var checks = [];
      var rows = p.rows.map(function (r) {
        var link = el('a', { 'class': 'id', href: '#', text: r.id || '(no id)' });
        link.addEventListener('click', function (ev) { ev.preventDefault(); if (r.id) openMessage(r.id); });
        var cells = [link, r.lane || '-', r.code || '-', r.error || '', r.attempts === null ? '-' : String(r.attempts), r.deadAt || '-'];
        if (!READ_ONLY) { var cb = el('input', { type: 'checkbox', 'aria-label': 'select ' + (r.id || ''), 'data-id': r.id || '' }); checks.push(cb); cells.unshift(cb); }
        return cells;
      });
      var headers = ['ID', 'Lane', 'Error code', 'Error message', 'Attempts', 'Dead-lettered at'];
      if (!READ_ONLY) headers.unshift('');
      var actions = null;
      if (!READ_ONLY) {
        var sel = el('button', { type: 'button', 'class': 'secondary', text: 'Replay selected' });
        sel.addEventListener('click', function () {
          var ids = checks.filter(function (c) { return c.checked && c.getAttribute('data-id'); }).map(function (c) { return c.getAttribute('data-id'); });
          if (!ids.length) { window.alert('Select messages first.'); return; }
          act(sel, 'Replay', 'dead/replay', { queue: state.queue, ids: ids }, ids.length + ' selected message(s)');
        });
        var all = el('button', { type: 'button', 'class': 'secondary', text: 'Replay all matching' });
        all.addEventListener('click', function () { bulk(all, 'Replay', 'dead/replay'); });
        var purge = el('button', { type: 'button', 'class': 'danger', text: 'Purge matching' });
        purge.addEventListener('click', function () { bulk(purge, 'Purge (delete for good)', 'dead/purge'); });
        actions = el('div', { 'class': 'toolbar' }, [sel, all, purge]);
      }
      var first = p.rows.length ? p.offset + 1 : 0;
      var prev = el('button', { type: 'button', 'class': 'secondary', text: 'Previous' });
      prev.disabled = p.offset === 0;
      prev.addEventListener('click', function () { go({ queue: state.queue, id: state.id, lane: state.lane, offset: Math.max(0, p.offset - p.limit) }); });
      var next = el('button', { type: 'button', 'class': 'secondary', text: 'Next' });
      next.disabled = p.rows.length < p.limit || p.offset + p.limit >= 1000;
      next.addEventListener('click', function () { go({ queue: state.queue, id: state.id, lane: state.lane, offset: p.offset + p.limit }); });
      show([
        el('nav', { 'class': 'tabs' }, ['dead', 'unroutable'].map(function (q) {
          var a = el('a', { href: '/ui/dead-letters' + (q === 'dead' ? '' : '?queue=unroutable'), text: q === 'dead' ? 'Dead' : 'Unroutable' });
          if (q === state.queue) a.setAttribute('aria-current', 'page');
          return a;
        })),
        form,
        el('p', { id: 'summary' }, [p.queue + ': ' + num(p.total) + ' message(s)' + describeFilter() + '; showing ' + (p.rows.length ? first + '–' + (p.offset + p.rows.length) : 'none') + ' (' + p.bound + (p.truncated ? '; more may match further back' : '') + ')']),
        actions,
        table(headers, rows),
        el('div', { 'class': 'toolbar' }, [prev, next]),
        el('section', { id: 'detail' })
      ]);
      if (state.open) openMessage(state.open);
    });
  }

  var pages = { overview: overview, schedule: schedule, 'dead-letters': deadLetters, config: config };
  var run = pages[PAGE];
  if (!run) return;
  run().catch(fail);
  // Overview and Schedule refresh themselves; pages with a selection or a form do not.
  if (PAGE === 'overview' || PAGE === 'schedule') setInterval(function () { run().catch(fail); }, 5000);
})();
`;
