/* gridwatch: clientside helpers for the maps (loaded locally from /assets, like everything else). */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridwatch: {
        /* Site-relative tile URLs become absolute (MapLibre fetches tiles from a worker, where relative
           URLs do not resolve), and a figure carrying layout.meta.fit = {bounds, padding, reserve}
           is centred and zoomed to fit its bounds in the graph's actual size (the server cannot
           know the screen: a laptop, a 1080p or a 4K wall). */
        mapFigure: function (fig) {
            if (!fig) { return window.dash_clientside.no_update; }
            var origin = window.location.origin;
            var out = Object.assign({}, fig);
            out.layout = Object.assign({}, fig.layout);
            var map = Object.assign({}, (fig.layout || {}).map || {});
            map.layers = (map.layers || []).map(function (l) {
                var c = Object.assign({}, l);
                if (Array.isArray(c.source)) {
                    c.source = c.source.map(function (s) {
                        return (typeof s === 'string' && s.charAt(0) === '/') ? origin + s : s;
                    });
                }
                return c;
            });
            var fit = ((fig.layout || {}).meta || {}).fit;
            var ctx = window.dash_clientside.callback_context;
            var id = ctx && ctx.outputs_list ? ctx.outputs_list.id : null;
            var el = id ? document.getElementById(id) : null;
            if (fit && el && el.clientWidth > 0 && el.clientHeight > 0) {
                var b = fit.bounds, pad = fit.padding || 0.3;
                var w = Math.max(el.clientWidth - (fit.reserve || 0), 100), h = el.clientHeight;
                var merc = function (lat) {
                    lat = Math.max(Math.min(lat, 85), -85);
                    return Math.log(Math.tan(Math.PI / 4 + lat * Math.PI / 360));
                };
                var dlon = Math.max(b[2] - b[0], 1e-6), dy = Math.max(merc(b[3]) - merc(b[1]), 1e-8);
                var zx = Math.log2(w * 360 / (512 * dlon)), zy = Math.log2(h * 2 * Math.PI / (512 * dy));
                map.zoom = Math.max(0, Math.min(zx, zy, 18) - pad);
                map.center = {
                    lon: (b[0] + b[2]) / 2,
                    lat: (2 * Math.atan(Math.exp((merc(b[1]) + merc(b[3])) / 2)) - Math.PI / 2) * 180 / Math.PI
                };
            }
            if (fit && fit.screenScale) {  /* walls: type and marks grow with the screen (1080p = 1) */
                var k = Math.max(1, window.innerHeight / 1080);
                var ca = JSON.parse(JSON.stringify(out.layout.coloraxis || {}));
                var cb = ca.colorbar || {};
                if (cb.title && cb.title.font && cb.title.font.size) { cb.title.font.size *= k; }
                if (cb.tickfont && cb.tickfont.size) { cb.tickfont.size *= k; }
                if (cb.thickness) { cb.thickness *= k; }
                out.layout.coloraxis = ca;
                map.layers = map.layers.map(function (l) {
                    if (l.circle && l.circle.radius) { l.circle = {radius: l.circle.radius * k}; }
                    if (l.line && l.line.width) { l.line = {width: l.line.width * k}; }
                    return l;
                });
                out.data = (fig.data || []).map(function (t) {
                    if (!t.marker || !t.marker.line || !Array.isArray(t.marker.line.width)) { return t; }
                    var c = Object.assign({}, t);
                    c.marker = Object.assign({}, t.marker);
                    c.marker.line = Object.assign({}, t.marker.line, {width: t.marker.line.width.map(function (w) { return w * k; })});
                    return c;
                });
            }
            out.layout.map = map;
            return out;
        }
    }
});

/* gridwatch live push: one server-sent-events stream per page (GET /api/v1/live?region=<code>, see
   gridwatch/api/live.py). The server sends a data-version message only when a change touches this
   page's region, at most one a second; this puts it into the shell-versions store, which the pages'
   refresh callbacks listen to. A page that hears nothing makes no request: no polling. The stream
   follows the page: the region in its path; the signed-in user's scope on the pages registered with
   live="mine" (the workbench, a case, intake, the phone: ?mine=true, the server knows the scope);
   everything on the wall and other pages. After a lost
   connection (server restart, a worker gone, database outage) the page refreshes once it is back. */
window.gridwatchLive = (function () {
    var source = null, scope = null, everOpened = false, broken = false, lastGood = Date.now();

    function setProps(id, props) {
        var dc = window.dash_clientside;
        if (dc && dc.set_props) {
            try { dc.set_props(id, props); } catch (e) { /* not on this page (yet) */ }
        }
    }
    var healthy = true;
    function beat(ok) {
        healthy = ok;
        if (ok) { lastGood = Date.now(); }
        setProps('shell-heartbeat', {data: {ok: ok, at: lastGood}});
        setProps('shell-banner', {hidden: ok});
    }
    /* An open stream from a server that has its database is "known good" every moment: the
       freshness badges age from it, in the browser, without a request. */
    setInterval(function () {
        if (healthy && source && source.readyState === 1) {
            lastGood = Date.now();
            setProps('shell-heartbeat', {data: {ok: true, at: lastGood}});
        }
    }, 1000);
    function initialVersions() {
        var el = document.getElementById('shell-live-init');
        try { return el ? JSON.parse(el.getAttribute('data-versions') || '{}') : {}; } catch (e) { return {}; }
    }
    function differs(a, b) {
        return Object.keys(b).some(function (k) { return k.charAt(0) !== '_' && a[k] !== b[k]; });
    }
    var MINE = '@mine';
    function minePaths() {
        var el = document.getElementById('shell-live-init');
        try { return el ? JSON.parse(el.getAttribute('data-mine') || '[]') : []; } catch (e) { return []; }
    }
    function scopeOf(pathname) {
        var path = pathname || '';
        if (minePaths().some(function (p) { return path === p || path.indexOf(p + '/') === 0; })) { return MINE; }
        var m = /\/(\d{2}|\d{4}|\d{6}|\d{9}|\d{12}|\d{15})(?:[\/?#]|$)/.exec(path);
        return m ? m[1] : '';
    }
    function open(sc) {
        if (source) { source.close(); }
        scope = sc;
        var first = true, firstEver = !everOpened;
        everOpened = true;
        source = new EventSource('/api/v1/live' + (sc === MINE ? '?mine=true' : sc ? '?region=' + sc : ''));
        source.addEventListener('version', function (e) {
            var v = JSON.parse(e.data);
            if (first) {
                first = false;
                if (broken) {                 /* back after a cut: whatever happened meanwhile, refresh */
                    setProps('shell-versions', {data: Object.assign({}, v, {_reconnected: Date.now()})});
                } else if (firstEver && differs(initialVersions(), v)) {   /* changed while the page loaded */
                    setProps('shell-versions', {data: v});
                }
                broken = false;
                beat(true);
                return;
            }
            setProps('shell-versions', {data: v});
            beat(true);
        });
        source.addEventListener('status', function (e) { beat(!!JSON.parse(e.data).ok); });
        source.addEventListener('beat', function (e) { beat(!!JSON.parse(e.data).ok); });
        source.onerror = function () {
            broken = true; first = true; firstEver = false; beat(false);
            var mine = source;
            if (mine.readyState === 2) {      /* refused (e.g. 503: too many streams): try again later */
                setTimeout(function () { if (source === mine) { open(scope); } }, 5000);
            }
        };
    }
    return {
        follow: function (pathname) {
            var sc = scopeOf(pathname);
            if (source === null || sc !== scope) { open(sc); }
            return sc;
        }
    };
})();

/* The pattern-matching id of the component whose click triggered a clientside callback ({type, …}),
   or null when nothing was clicked (a redrawn button reports n_clicks 0). */
window.gridwatchClicked = function () {
    var trig = (window.dash_clientside.callback_context.triggered || [])[0];
    if (!trig || !trig.value) { return null; }
    try { return JSON.parse(trig.prop_id.slice(0, trig.prop_id.lastIndexOf('.'))); } catch (e) { return null; }
};
