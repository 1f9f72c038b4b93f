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
