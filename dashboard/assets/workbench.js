/* The workbench in the browser (no polling, no outside requests):
 * - countdowns: every element with data-due shows the time left (or overdue) and updates each second;
 * - keyboard shortcuts on /workbench (listed on the page);
 * - /intake: a click on the map places the case (MapLibre's click → the intake-click store);
 * - /m, the grid worker's phone: position dot from the browser's geolocation (WGS84, or GCJ-02 when
 *   the worker says the phone gives that), reports with photos and the all-clear, queued in
 *   localStorage with a client_request_id made on the phone and sent when the connection returns —
 *   the server's idempotency on that id makes a resend harmless, so each report exists once.
 */
(function () {
  'use strict';

  // ------------------------------------------------------------------ countdowns
  function lang() { return document.documentElement.lang === 'en' ? 'en' : 'zh'; }
  function span(ms) {
    var m = Math.floor(Math.abs(ms) / 60000), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60), mm = m % 60;
    if (lang() === 'en') return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + mm + 'min';
    return (d ? d + '天' : '') + (d || h ? h + '小时' : '') + mm + '分';
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll('[data-due]').forEach(function (el) {
      var due = Date.parse(el.getAttribute('data-due'));
      if (isNaN(due)) return;
      var left = due - now, text;
      if (left >= 0) text = (lang() === 'en' ? span(left) + ' left' : '剩余 ' + span(left));
      else text = (lang() === 'en' ? 'overdue ' + span(left) : '逾期 ' + span(left));
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle('overdue', left < 0);
      el.classList.toggle('soon', left >= 0 && left < 2 * 3600 * 1000);
    });
  }
  setInterval(tick, 1000);
  new MutationObserver(function () { tick(); }).observe(document.documentElement, {childList: true, subtree: true});

  // ------------------------------------------------------------------ workbench shortcuts
  function rows() { return Array.prototype.slice.call(document.querySelectorAll('#workbench-select label')); }
  function focusRow(step) {
    var list = rows(); if (!list.length) return;
    var i = list.findIndex(function (r) { return r.contains(document.activeElement); });
    i = Math.max(0, Math.min(list.length - 1, i < 0 ? 0 : i + step));
    var link = list[i].querySelector('.wb-ref'); if (link) link.focus();
  }
  // Keep the operator's place: a push redraws the queue, and a row drawn anew loses the focus (to the
  // page body) in the middle of j/k and Enter. The focus follows the case it was on.
  var focusedCase = null;
  document.addEventListener('focusin', function (e) {
    var t = e.target;
    focusedCase = t && t.id && t.id.indexOf('workbench-open-') === 0 ? t.id : null;
  });
  document.addEventListener('focusout', function (e) {
    var t = e.target;
    if (!t || t.id !== focusedCase) return;
    // left by the user (the row is still there) or taken away by a redraw (it is not)
    setTimeout(function () { if (focusedCase === t.id && document.contains(t) && document.activeElement !== t) focusedCase = null; }, 0);
  });
  new MutationObserver(function () {
    if (!focusedCase) return;
    var a = document.activeElement;
    if (a && a !== document.body && document.contains(a)) return;
    var link = document.getElementById(focusedCase);
    if (link) link.focus();
  }).observe(document.documentElement, {childList: true, subtree: true});

  document.addEventListener('keydown', function (e) {
    if (!document.getElementById('workbench-page')) return;
    var tag = (e.target.tagName || '').toLowerCase();
    if (tag === 'input' && e.target.type !== 'checkbox' || tag === 'textarea' || e.ctrlKey || e.metaKey || e.altKey) {
      if (e.key === 'Escape') e.target.blur();
      return;
    }
    var row = rows().find(function (r) { return r.contains(document.activeElement); });
    if (e.key === '/') { e.preventDefault(); document.getElementById('workbench-filter').focus(); }
    else if (e.key === 'j') { e.preventDefault(); focusRow(1); }
    else if (e.key === 'k') { e.preventDefault(); focusRow(-1); }
    else if (e.key === 'x' && row) { e.preventDefault(); row.querySelector('input[type=checkbox]').click(); }
    else if (e.key === 'a') { var b = document.getElementById('workbench-bulk-accept'); if (b) { e.preventDefault(); b.click(); } }
    else if (e.key === 'n') { var n = document.getElementById('workbench-notify-button'); if (n) { e.preventDefault(); n.click(); } }
    else if (/^[1-8]$/.test(e.key)) {
      var tabs = document.querySelectorAll('#workbench-tabs .wb-tab');
      var tab = tabs[parseInt(e.key, 10)]; if (tab) { e.preventDefault(); tab.click(); tab.focus(); }
    }
  });

  // ------------------------------------------------------------------ intake: click the map
  function hookIntakeMap() {
    var gd = document.querySelector('#intake-map .js-plotly-plot');
    var m = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot && gd._fullLayout.map._subplot.map;
    if (!m || m._gwHooked) return;
    m._gwHooked = true;
    m.on('click', function (ev) {
      if (window.dash_clientside && window.dash_clientside.set_props) {
        window.dash_clientside.set_props('intake-click', {data: {lon: ev.lngLat.lng, lat: ev.lngLat.lat, at: Date.now()}});
      }
    });
  }
  setInterval(function () { if (document.getElementById('intake-map')) hookIntakeMap(); }, 500);

  // ------------------------------------------------------------------ the phone page
  var QUEUE_KEY = 'gridwatch.m.queue';
  var PI = Math.PI, A = 6378245.0, EE = 0.00669342162296594323;
  function outOfChina(lon, lat) { return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271; }
  function tLat(x, y) {
    var r = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
    r += (20 * Math.sin(y * PI) + 40 * Math.sin(y / 3 * PI)) * 2 / 3;
    r += (160 * Math.sin(y / 12 * PI) + 320 * Math.sin(y * PI / 30)) * 2 / 3;
    return r;
  }
  function tLon(x, y) {
    var r = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
    r += (20 * Math.sin(x * PI) + 40 * Math.sin(x / 3 * PI)) * 2 / 3;
    r += (150 * Math.sin(x / 12 * PI) + 300 * Math.sin(x / 30 * PI)) * 2 / 3;
    return r;
  }
  function wgsToGcj(lon, lat) {
    if (outOfChina(lon, lat)) return [lon, lat];
    var dLat = tLat(lon - 105, lat - 35), dLon = tLon(lon - 105, lat - 35), rad = lat / 180 * PI;
    var magic = 1 - EE * Math.sin(rad) * Math.sin(rad), sq = Math.sqrt(magic);
    dLat = (dLat * 180) / ((A * (1 - EE)) / (magic * sq) * PI);
    dLon = (dLon * 180) / (A / sq * Math.cos(rad) * PI);
    return [lon + dLon, lat + dLat];
  }
  // GCJ-02 → WGS84 by iteration (for the dot only: the server converts reports itself, geo/coords.py)
  function gcjToWgs(lon, lat) {
    var x = lon, y = lat;
    for (var i = 0; i < 6; i++) { var g = wgsToGcj(x, y); x -= g[0] - lon; y -= g[1] - lat; }
    return [x, y];
  }
  window.gridwatchCoords = {wgsToGcj: wgsToGcj, gcjToWgs: gcjToWgs};

  function el(id) { return document.getElementById(id); }
  function say(text, bad) { var s = el('m-status'); if (s) { s.textContent = text; s.classList.toggle('bad', !!bad); } }
  function zh() { return lang() !== 'en'; }
  function load() { try { return JSON.parse(localStorage.getItem(QUEUE_KEY) || '[]'); } catch (e) { return []; } }
  function save(q) { localStorage.setItem(QUEUE_KEY, JSON.stringify(q)); showPending(); }
  function showPending() {
    var n = load().length, p = el('m-pending');
    if (p) { p.textContent = n ? (zh() ? '待发送 ' + n + ' 条（联网后自动发送）' : n + ' waiting to send (sent when online)') : ''; p.hidden = !n; }
  }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, function (c) {
      var r = Math.random() * 16 | 0; return (c === 'x' ? r : (r & 3 | 8)).toString(16); });
  }

  var position = null;   // {lon, lat, accuracy} as the phone gives it, plus its datum
  function datum() { var d = document.querySelector('#m-datum input:checked'); return d ? d.value : 'wgs84'; }
  function dot(tries) {
    var gd = document.querySelector('#m-map .js-plotly-plot');
    if (!position) return;
    if (!gd || !gd.data || !window.Plotly) {            // the map is still being drawn: try again shortly
      if ((tries || 0) < 40) setTimeout(function () { dot((tries || 0) + 1); }, 250);
      return;
    }
    var p = datum() === 'gcj02' ? gcjToWgs(position.lon, position.lat) : [position.lon, position.lat];
    var i = gd.data.findIndex(function (tr) { return tr.name === 'me'; });
    if (i >= 0) window.Plotly.restyle(gd, {lon: [[p[0]]], lat: [[p[1]]]}, [i]);
  }
  function locate() {
    if (!navigator.geolocation) { say(zh() ? '此设备无法定位' : 'This device cannot locate', true); return; }
    navigator.geolocation.getCurrentPosition(function (pos) {
      position = {lon: pos.coords.longitude, lat: pos.coords.latitude, accuracy: pos.coords.accuracy};
      var l = el('m-position');
      if (l) l.textContent = position.lon.toFixed(5) + ', ' + position.lat.toFixed(5) + ' ±' + Math.round(position.accuracy || 0) + 'm';
      dot(0);
    }, function (err) { say((zh() ? '定位失败：' : 'Location failed: ') + err.message, true); },
    {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
  }

  // Photos are shrunk on the phone (long side ≤ 1600 px, JPEG) so they fit a bad connection and the queue.
  function shrink(file) {
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onerror = reject;
      reader.onload = function () {
        var img = new Image();
        img.onerror = function () { resolve(reader.result); };
        img.onload = function () {
          var s = Math.min(1, 1600 / Math.max(img.width, img.height));
          var c = document.createElement('canvas'); c.width = Math.round(img.width * s); c.height = Math.round(img.height * s);
          c.getContext('2d').drawImage(img, 0, 0, c.width, c.height);
          resolve(c.toDataURL('image/jpeg', 0.8));
        };
        img.src = reader.result;
      };
      reader.readAsDataURL(file);
    });
  }
  function dataUrlBytes(url) {
    var b = atob(url.split(',')[1]), out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out;
  }

  var flushing = false;
  async function sendOne(item) {
    if (item.type === 'all_clear') {
      var r0 = await fetch('/api/v1/m/all-clear', {method: 'POST', credentials: 'same-origin',
                                                   headers: {'Content-Type': 'application/json'}, body: '{}'});
      if (!r0.ok && r0.status < 500) throw {final: true, status: r0.status, body: await r0.text()};
      if (!r0.ok) throw {status: r0.status};
      return {kind: 'all_clear'};
    }
    if (!item.id) {
      var r = await fetch('/api/v1/m/reports', {method: 'POST', credentials: 'same-origin',
                                              headers: {'Content-Type': 'application/json'}, body: JSON.stringify(item.body)});
      var body = await r.json().catch(function () { return {}; });
      if (!r.ok) throw {final: r.status < 500, status: r.status, body: body};
      item.id = body.id; item.kind = body.kind; item.ref = body.ref;
      var q = load(); q.forEach(function (x) { if (x.body && x.body.client_request_id === item.body.client_request_id) { x.id = item.id; x.kind = item.kind; x.ref = item.ref; } }); save(q);
    }
    while (item.photos && item.photos.length) {
      var url = '/api/v1/' + (item.kind === 'hazard' ? 'hazards/' : 'cases/') + item.id + '/attachments';
      var p = await fetch(url, {method: 'POST', credentials: 'same-origin',
                                headers: {'Content-Type': 'image/jpeg', 'X-Filename': encodeURIComponent(item.photos[0].name)},
                                body: dataUrlBytes(item.photos[0].data)});
      if (!p.ok) throw {final: p.status < 500 && p.status !== 408, status: p.status, body: await p.text()};
      item.photos.shift();
      var q2 = load(); q2.forEach(function (x) { if (x.body && x.body.client_request_id === item.body.client_request_id) x.photos = item.photos; }); save(q2);
    }
    return item;
  }
  async function flush() {
    if (flushing || !navigator.onLine) return;
    flushing = true;
    try {
      var q = load();
      while (q.length) {
        var item = q[0], done;
        try { done = await sendOne(item); }
        catch (e) {
          if (e && e.final) {     // refused for good (bad input): keep it visible, drop it from the queue
            say((zh() ? '被拒绝：' : 'Refused: ') + JSON.stringify((e.body && e.body.error && (zh() ? e.body.error.message_zh : e.body.error.message)) || e.body || e.status), true);
            q = load(); q.shift(); save(q); continue;
          }
          say(zh() ? '网络不通，联网后自动重发' : 'No connection: will resend when online', true);
          break;
        }
        q = load(); q.shift(); save(q);
        if (done.kind === 'all_clear') say(zh() ? '已报平安' : 'All-clear sent');
        else say((zh() ? '已上报 ' : 'Reported ') + (done.ref || ('#' + done.id)));
        var list = el('m-sent'); if (list) { var li = document.createElement('li'); li.textContent = el('m-status').textContent; list.prepend(li); }
      }
    } finally { flushing = false; showPending(); }
  }
  window.gridwatchPhone = {flush: flush, queue: load};

  async function report() {
    if (!position) { say(zh() ? '请先定位' : 'Locate first', true); return; }
    var kind = (document.querySelector('#m-kind input:checked') || {}).value || 'case';
    var body = {kind: kind, lon: position.lon, lat: position.lat, coord_system: datum(),
                accuracy_m: position.accuracy ? Math.min(100000, position.accuracy) : null,
                title: (el('m-title').value || '').trim() || null, description: (el('m-description').value || '').trim() || null,
                client_request_id: uuid()};
    if (kind === 'hazard') body.hazard_kind = el('m-hazard-kind').value;
    else body.category = el('m-category').value;
    var files = Array.prototype.slice.call(el('m-photo').files || []).slice(0, 4), photos = [];
    for (var i = 0; i < files.length; i++) photos.push({name: files[i].name || ('photo' + i + '.jpg'), data: await shrink(files[i])});
    var q = load(); q.push({type: 'report', body: body, photos: photos, queued_at: Date.now()}); save(q);
    el('m-title').value = ''; el('m-description').value = ''; el('m-photo').value = '';
    say(navigator.onLine ? (zh() ? '正在上报…' : 'Sending…') : (zh() ? '无网络：已存入手机，联网后自动发送' : 'Offline: kept on the phone, sent when online'));
    flush();
  }
  function allClear() {
    var q = load(); q.push({type: 'all_clear', queued_at: Date.now()}); save(q);
    say(navigator.onLine ? (zh() ? '正在报平安…' : 'Sending the all-clear…') : (zh() ? '无网络：联网后自动报平安' : 'Offline: the all-clear is sent when online'));
    flush();
  }
  document.addEventListener('click', function (e) {
    var t = e.target.closest && e.target.closest('button');
    if (!t) return;
    if (t.id === 'm-locate') locate();
    else if (t.id === 'm-report') report();
    else if (t.id === 'm-all-clear') allClear();
  });
  document.addEventListener('change', function (e) {
    if (e.target.closest && e.target.closest('#m-datum')) dot(0);
    if (e.target.closest && e.target.closest('#m-kind')) {
      var hz = (document.querySelector('#m-kind input:checked') || {}).value === 'hazard';
      if (el('m-hazard-row')) el('m-hazard-row').hidden = !hz;
      if (el('m-category-row')) el('m-category-row').hidden = hz;
    }
  });
  window.addEventListener('online', function () { flush(); });
  // On opening the page: show what waits, locate, and send what waits.
  var started = setInterval(function () {
    if (!el('m-page')) return;
    clearInterval(started); showPending(); locate(); flush();
  }, 200);
})();
