/* Alert tiles are clickable on every map (drill-down, alerts page): a click on a feature of the
   alerts_red / alerts_orange / alerts_yellow tile layers opens a small card with the alert's rule,
   explanation and state, read from the tile itself (no request). Plotly draws its layout layers
   with MapLibre but gives them no click events, so this listens on the plot itself. */
(function () {
    var TITLES = {
        deadline_near: ['临近期限', 'Near deadline'], deadline_past: ['超期未结', 'Past deadline'],
        red_case: ['红色案件', 'Red-grade case'], red_hazard: ['红色隐患', 'Red-grade hazard'],
        spike: ['类别异常增多', 'Category spike'], hotspot: ['新热点网格', 'Emerging hotspot'],
        repeat_place: ['重复发生地点', 'Repeat place'], repeat_party: ['重复诉求人', 'Repeat party'],
        silent_grid: ['静默网格', 'Silent grid'], hazard_overdue: ['隐患逾期未整改', 'Hazard overdue'],
        department_returns: ['部门频繁退回', 'Department keeps returning cases']
    };
    function lang() {
        try { return (JSON.parse(localStorage.getItem('shell-lang')) || 'zh') === 'en' ? 1 : 0; } catch (e) { return 0; }
    }
    function text(el, tag, cls, value) {
        var x = document.createElement(tag);
        if (cls) { x.className = cls; }
        x.textContent = value;
        el.appendChild(x);
        return x;
    }
    function show(map, e, f) {
        var box = map.getContainer();
        var old = box.querySelector('.gw-alert-pop');
        if (old) { old.remove(); }
        var p = f.properties || {}, en = lang();
        var pop = document.createElement('div');
        pop.className = 'gw-alert-pop sev-' + (p.severity || '');
        pop.id = 'gw-alert-pop';
        pop.setAttribute('data-alert-id', f.id);
        text(pop, 'strong', '', (TITLES[p.rule] || [p.rule, p.rule])[en] + ' · ' + (p.region_code || ''));
        text(pop, 'p', '', en ? (p.text_en || p.text) : p.text);
        var state = [(en ? 'raised ' : '预警时间 ') + (p.raised || '')];
        if (p.acknowledged === true || p.acknowledged === 'true') { state.push(en ? 'acknowledged' : '已确认'); }
        if (+p.escalated > 0) { state.push((en ? 'escalated ×' : '已上报 ') + p.escalated); }
        if (p.silenced_until) { state.push((en ? 'silenced until ' : '静默至 ') + p.silenced_until); }
        text(pop, 'small', '', state.join(' · '));
        var close = text(pop, 'button', 'gw-alert-pop-close', '×');
        close.onclick = function () { pop.remove(); };
        pop.style.left = Math.min(e.point.x + 12, box.clientWidth - 300) + 'px';
        pop.style.top = Math.max(4, Math.min(e.point.y - 10, box.clientHeight - 140)) + 'px';
        box.appendChild(pop);
    }
    function attach() {
        document.querySelectorAll('.js-plotly-plot').forEach(function (gd) {
            if (gd._gwAlertClicks) { return; }
            gd._gwAlertClicks = true;
            /* capture phase on the plot: a click on an alert opens its card and goes no further, so
               the map under it (e.g. the drill-down's regions) does not also take the click */
            gd.addEventListener('click', function (ev) {
                var sub = gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot;
                var map = sub && sub.map;
                if (!map || !map.getCanvas().contains(ev.target)) { return; }
                var r = map.getCanvas().getBoundingClientRect();
                var pt = {x: ev.clientX - r.left, y: ev.clientY - r.top};
                var hits = map.queryRenderedFeatures([[pt.x - 6, pt.y - 6], [pt.x + 6, pt.y + 6]]).filter(
                    function (f) { return /^alerts_(red|orange|yellow)$/.test(f.sourceLayer || ''); });
                if (!hits.length) { return; }
                ev.stopPropagation();
                show(map, {point: pt}, hits[0]);
            }, true);
        });
    }
    setInterval(attach, 1000);
})();
