// The supervisors' live dashboard (served by the gateway from src/dashboard).
//
// The page keeps no data of its own: it reads the JSON API the consoles use and re-reads it when
// the event stream says something changed. Events only trigger a re-fetch, they are never
// applied as deltas, so a missed or duplicated event can at worst cost one extra request and the
// page always shows what the API shows. There is no polling timer; the only timer ticks the
// countdowns shown in the risk lists, locally, without a request.
'use strict';

(() => {
  // ---- Every text of the page, Chinese first. Keys are looked up with t(). ----
  const TEXT = {
    zh: {
      'title': '热线工单监控',
      'skip': '跳到主要内容',
      'live.open': '实时已连接',
      'live.connecting': '正在重连…',
      'live.off': '未连接',
      'region': '地区',
      'region.all': '全部',
      'signout': '退出',
      'signin.title': '主管登录',
      'signin.token': '主管令牌',
      'signin.submit': '登录',
      'signin.hint': '令牌只保存在本标签页中，关闭即清除。',
      'signin.bad': '令牌无效或已失效：{detail}',
      'signin.role': '此令牌没有主管权限：{detail}',
      'queues.title': '队列',
      'queues.empty': '暂无队列。',
      'tile.waiting': '件待办',
      'tile.oldest': '最长等待',
      'tile.sla': '24小时时限达标率',
      'tile.agents': '可用人员',
      'tile.levels': '预警',
      'tile.levels.title': '按工单本身的预警等级',
      'tile.bands': '优先级',
      'tile.bands.title': '按排队档位（超时会把工单提高一档）',
      'risk.title': '即将超时',
      'breached.title': '已超时',
      'risk.empty': '没有即将超时的工单。',
      'breached.empty': '没有超时工单。',
      'col.ticket': '工单',
      'col.queue': '队列',
      'col.clock': '时限',
      'col.level': '预警',
      'col.left': '剩余',
      'col.over': '超时',
      'col.actions': '操作',
      'provisional': '暂定',
      'provisional.title': '该年节假日安排尚未公布：时限按平常工作周暂定计算，补充节假日数据并重新加载后自动重算。',
      'charts.title': '今日工单',
      'charts.category': '按类别',
      'charts.hour': '按小时',
      'charts.source': '按来源',
      'charts.county': '按地区',
      'charts.count': '工单数',
      'charts.hour.label': '{h}时',
      'action.escalate': '升级',
      'action.raise': '提高优先级',
      'action.transfer': '改派',
      'action.service': '转至',
      'action.reason': '原因',
      'action.cancel': '取消',
      'action.submit': '确定',
      'action.need_reason': '请填写原因。',
      'action.done': '{action}成功：{id}',
      'action.failed': '{action}失败：{detail}',
      'error.load': '数据加载失败：{detail}',
      'error.network': '无法连接网关',
      'clock.accept': '接单',
      'clock.first_contact': '首次联系',
      'clock.resolve': '办结',
      'clock.follow_up': '回访',
      'kind.legal': '法律咨询',
      'kind.mediation': '人民调解',
      'kind.triage': '人工分拣',
      'kind.supervisor': '主管',
      'service.legal_consultation': '法律咨询',
      'service.mediation': '人民调解',
      'source.12345': '12345 市民热线',
      'source.110': '110 非警务',
      'source.12348': '12348 法律服务',
      'cat.marriage_family': '婚姻家庭',
      'cat.neighbour': '邻里',
      'cat.housing_land': '房屋宅基地',
      'cat.demolition': '征地拆迁',
      'cat.contract_debt': '合同债务',
      'cat.business': '生产经营',
      'cat.injury': '损害赔偿',
      'cat.labour': '劳动争议',
      'cat.consumer': '消费',
      'cat.medical': '医疗',
      'cat.traffic': '交通事故',
      'cat.property_mgmt': '物业',
      'cat.environment': '环境污染',
      'cat.criminal': '刑事治安',
      'cat.administrative': '行政',
      'cat.other': '其他',
      'seg.family': '婚姻家庭',
      'dur.s': '{s}秒',
      'dur.m': '{m}分{s}秒',
      'dur.h': '{h}小时{m}分',
      'dur.d': '{d}天{h}小时',
      'na': '—',
    },
    en: {
      'title': 'Hotline tickets: live',
      'skip': 'Skip to main content',
      'live.open': 'Live',
      'live.connecting': 'Reconnecting…',
      'live.off': 'Not connected',
      'region': 'Region',
      'region.all': 'All',
      'signout': 'Sign out',
      'signin.title': 'Supervisor sign-in',
      'signin.token': 'Supervisor token',
      'signin.submit': 'Sign in',
      'signin.hint': 'The token stays in this tab only and is gone when it closes.',
      'signin.bad': 'The token is not valid: {detail}',
      'signin.role': 'This token is not a supervisor\'s: {detail}',
      'queues.title': 'Queues',
      'queues.empty': 'No queues yet.',
      'tile.waiting': 'waiting',
      'tile.oldest': 'Oldest wait',
      'tile.sla': 'SLA met, last 24 h',
      'tile.agents': 'Agents available',
      'tile.levels': 'Warning',
      'tile.levels.title': 'By the tickets\' own warning level',
      'tile.bands': 'Priority',
      'tile.bands.title': 'By priority band (a breach raises a ticket one band)',
      'risk.title': 'At risk',
      'breached.title': 'Breached',
      'risk.empty': 'No ticket is at risk.',
      'breached.empty': 'No ticket has breached.',
      'col.ticket': 'Ticket',
      'col.queue': 'Queue',
      'col.clock': 'Clock',
      'col.level': 'Level',
      'col.left': 'Left',
      'col.over': 'Over by',
      'col.actions': 'Actions',
      'provisional': 'provisional',
      'provisional.title': 'No holiday schedule for that year yet: the deadline is counted on the ordinary working week and recomputed once the holiday data is added and reloaded.',
      'charts.title': 'Today\'s tickets',
      'charts.category': 'By category',
      'charts.hour': 'By hour',
      'charts.source': 'By source',
      'charts.county': 'By county',
      'charts.count': 'Tickets',
      'charts.hour.label': '{h}:00',
      'action.escalate': 'Escalate',
      'action.raise': 'Raise priority',
      'action.transfer': 'Reassign',
      'action.service': 'To',
      'action.reason': 'Reason',
      'action.cancel': 'Cancel',
      'action.submit': 'Confirm',
      'action.need_reason': 'Please give a reason.',
      'action.done': '{action}: done for {id}',
      'action.failed': '{action} failed: {detail}',
      'error.load': 'Could not load data: {detail}',
      'error.network': 'The gateway cannot be reached',
      'clock.accept': 'Accept',
      'clock.first_contact': 'First contact',
      'clock.resolve': 'Resolve',
      'clock.follow_up': 'Follow-up',
      'kind.legal': 'Legal consultation',
      'kind.mediation': 'Mediation',
      'kind.triage': 'Triage',
      'kind.supervisor': 'Supervisors',
      'service.legal_consultation': 'Legal consultation',
      'service.mediation': 'People\'s mediation',
      'source.12345': '12345 citizen service',
      'source.110': '110 police desk',
      'source.12348': '12348 legal service',
      'cat.marriage_family': 'Marriage and family',
      'cat.neighbour': 'Neighbours',
      'cat.housing_land': 'Housing and land',
      'cat.demolition': 'Land requisition',
      'cat.contract_debt': 'Contracts and debts',
      'cat.business': 'Business',
      'cat.injury': 'Damages',
      'cat.labour': 'Labour',
      'cat.consumer': 'Consumer',
      'cat.medical': 'Medical',
      'cat.traffic': 'Traffic accidents',
      'cat.property_mgmt': 'Property management',
      'cat.environment': 'Pollution',
      'cat.criminal': 'Crime and public order',
      'cat.administrative': 'Administrative',
      'cat.other': 'Other',
      'seg.family': 'Marriage and family',
      'dur.s': '{s}s',
      'dur.m': '{m}m {s}s',
      'dur.h': '{h}h {m}m',
      'dur.d': '{d}d {h}h',
      'na': '—',
    },
  };

  // The warning scale and the priority bands come from the gateway (GET /v1/dashboard/config),
  // read from its configuration (classify.warning_levels): nothing of them is written here.
  const CATEGORIES = ['marriage_family', 'neighbour', 'housing_land', 'demolition', 'contract_debt',
    'business', 'injury', 'labour', 'consumer', 'medical', 'traffic', 'property_mgmt',
    'environment', 'criminal', 'administrative', 'other'];
  const SOURCES = ['12345', '110', '12348'];
  const SOURCE_COLOURS = ['#1f5fbf', '#b42318', '#1a7f37', '#6b7280'];
  // Every event type of GET /v1/events; each one means the figures may have changed.
  const EVENT_TYPES = ['ticket.created', 'ticket.claimed', 'ticket.offered', 'ticket.accept',
    'ticket.first_contact', 'ticket.pause', 'ticket.resume', 'ticket.resolve', 'ticket.follow_up',
    'ticket.transfer', 'ticket.escalate', 'ticket.return', 'ticket.dispute', 'ticket.reopen',
    'ticket.raise', 'ticket.note', 'lease.expired', 'sla.warning', 'sla.breached', 'sla.notify',
    'sla.recomputed', 'agent.away'];
  // At most one round of data requests per second, however many events arrive.
  const REFRESH_MIN_MS = 1000;

  const state = {
    lang: localStorage.getItem('hl-dash-lang') === 'en' ? 'en' : 'zh',
    token: sessionStorage.getItem('hl-dash-token') || '',
    region: sessionStorage.getItem('hl-dash-region') || '',
    counties: new Set(),
    queues: null,
    scale: null,
    risk: null,
    riskAt: 0,
    today: null,
    source: null,
    live: 'off',
    charts: {},
    lastEventId: '',
    generation: 0,
    lastRefresh: 0,
    inFlight: false,
    dirty: false,
    timer: null,
    action: null,
  };

  const $ = (id) => document.getElementById(id);

  function t(key, vars) {
    const text = (TEXT[state.lang] && TEXT[state.lang][key]) ?? TEXT.zh[key] ?? key;
    return vars ? text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? '')) : text;
  }

  // Builds an element; text goes in as text nodes, so nothing from the API is parsed as HTML.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return t('na');
    const s = Math.max(0, Math.round(Math.abs(seconds)));
    if (s < 60) return t('dur.s', { s });
    if (s < 3600) return t('dur.m', { m: Math.floor(s / 60), s: s % 60 });
    if (s < 86400) return t('dur.h', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
    return t('dur.d', { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
  }

  const known = (prefix, code) => (TEXT.zh[`${prefix}.${code}`] ? t(`${prefix}.${code}`) : code);

  // A warning level as the gateway's scale names and colours it; a level the scale does not
  // know (a ticket from before a configuration change) shows its name, in grey.
  function levelLook(name) {
    const l = ((state.scale && state.scale.warning_levels) || []).find((x) => x.name === name);
    return l ? { label: state.lang === 'en' ? l.label_en : l.label_zh, colour: l.colour } : { label: name, colour: null };
  }

  // A chip for a warning level: the name is always written, the colour only adds to it.
  function levelChip(name, count) {
    const look = levelLook(name);
    const chip = h('li', { class: `level${count === 0 ? ' zero' : ''}`, 'data-level': name,
      text: count === undefined ? look.label : `${look.label} ${count}` });
    if (look.colour) chip.style.setProperty('--c', look.colour);
    return chip;
  }

  function bandLabel(band) {
    const b = ((state.scale && state.scale.bands) || []).find((x) => x.band === band);
    if (b) return state.lang === 'en' ? b.label_en : b.label_zh;
    return state.lang === 'en' ? `Band ${band + 1}` : `${band + 1}档`;
  }

  // "mediation.320831.labour" → "人民调解 · 320831 · 劳动争议".
  function queueTitle(q) {
    const parts = String(q.name).split('.');
    const words = [known('kind', q.kind || parts[0]), q.county || parts[1]];
    // Desk names of the routing rules are categories or short forms of them ("family").
    for (const p of parts.slice(2)) words.push(TEXT.zh[`seg.${p}`] ? t(`seg.${p}`) : known('cat', p));
    return words.filter(Boolean).join(' · ');
  }

  // ---- Talking to the gateway ----

  class ApiProblem extends Error {
    constructor(status, detail) { super(detail); this.status = status; this.detail = detail; }
  }

  // Adds the region filter to the data endpoints when one is chosen.
  function withRegion(path) {
    return state.region ? `${path}?region=${encodeURIComponent(state.region)}` : path;
  }

  // One request with the bearer token; failures become ApiProblem with the problem's `detail`.
  async function api(method, path, body) {
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: Object.assign({ authorization: `Bearer ${state.token}`, accept: 'application/json' },
          body ? { 'content-type': 'application/json' } : {}),
        body: body ? JSON.stringify(body) : undefined,
        cache: 'no-store',
      });
    } catch (_) {
      throw new ApiProblem(0, t('error.network'));
    }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
    if (!res.ok) {
      const detail = (json && (json.detail || json.title)) || `HTTP ${res.status}`;
      throw new ApiProblem(res.status, detail);
    }
    return json;
  }

  // ---- Live updates: the event stream only says "something changed" ----

  let source = null;

  function setLive(live) {
    state.live = live;
    $('live').dataset.state = live;
    $('live-text').textContent = t(`live.${live}`);
  }

  // `resume` carries the last position seen into a stream the page opens itself (after the
  // browser gave up); a new region filter starts afresh, as the snapshot is re-read anyway.
  function connect(resume) {
    disconnect();
    const params = new URLSearchParams({ access_token: state.token });
    if (state.region) params.set('region', state.region);
    if (resume && state.lastEventId) params.set('last_event_id', state.lastEventId);
    // EventSource reconnects by itself and sends Last-Event-ID, so the gateway resumes the
    // county streams where this page left them.
    const es = new EventSource(`/v1/events?${params}`);
    source = es;
    setLive('connecting');
    es.onopen = () => { if (source === es) { setLive('open'); scheduleRefresh(); } };
    es.onerror = () => {
      if (source !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // The gateway refused the stream (bad token, or not an event stream): the browser will
        // not retry by itself. Learn why from a data request, then retry the stream once.
        setLive('off');
        scheduleRefresh();
        setTimeout(() => { if (source === es && state.token) connect(true); }, 5000);
      } else {
        setLive('connecting');
      }
    };
    const onEvent = (ev) => {
      if (ev.lastEventId) state.lastEventId = ev.lastEventId;
      // Counts for whoever diagnoses a stale page (and the browser test's failure report).
      $('live').dataset.events = Number($('live').dataset.events || 0) + 1;
      $('live').dataset.lastEvent = ev.type;
      scheduleRefresh();
    };
    for (const type of EVENT_TYPES) es.addEventListener(type, onEvent);
    es.onmessage = onEvent;
  }

  function disconnect() {
    if (source) { source.close(); source = null; }
    setLive('off');
  }

  // Throttle: a refresh starts at once if the last one began over a second ago, else when that
  // second is up; events arriving meanwhile fold into that one.
  function scheduleRefresh() {
    if (!state.token) return;
    if (state.inFlight) { state.dirty = true; return; }
    if (state.timer) return;
    const wait = Math.max(0, state.lastRefresh + REFRESH_MIN_MS - Date.now());
    state.timer = setTimeout(() => { state.timer = null; refresh(); }, wait);
  }

  async function refresh() {
    if (!state.token) return;
    state.inFlight = true;
    state.dirty = false;
    state.lastRefresh = Date.now();
    $('live').dataset.refreshes = Number($('live').dataset.refreshes || 0) + 1;
    const generation = state.generation;
    const [queues, risk, today, scale] = await Promise.allSettled([
      api('GET', withRegion('/v1/queues')),
      api('GET', withRegion('/v1/dashboard/risk')),
      api('GET', withRegion('/v1/dashboard/today')),
      // The scale is configuration: read once per sign-in.
      state.scale ? Promise.resolve(state.scale) : api('GET', '/v1/dashboard/config'),
    ]);
    state.inFlight = false;
    // The region changed while these were in flight: they answer for the old one; ask again.
    if (generation !== state.generation) { scheduleRefresh(); return; }
    const failures = [queues, risk, today, scale].filter((r) => r.status === 'rejected').map((r) => r.reason);
    const denied = failures.find((e) => e.status === 401 || e.status === 403);
    if (denied) {
      signOut(t(denied.status === 401 ? 'signin.bad' : 'signin.role', { detail: denied.detail }));
      return;
    }
    if (queues.status === 'fulfilled') {
      state.queues = queues.value.queues || [];
      for (const q of state.queues) if (q.county) state.counties.add(q.county);
    }
    if (scale.status === 'fulfilled') state.scale = scale.value;
    if (risk.status === 'fulfilled') { state.risk = risk.value; state.riskAt = Date.now(); }
    if (today.status === 'fulfilled') state.today = today.value;
    $('board-error').textContent = failures.length
      ? t('error.load', { detail: [...new Set(failures.map((e) => e.detail))].join('; ') })
      : '';
    render();
    if (state.dirty) scheduleRefresh();
  }

  // ---- Rendering ----

  function render() {
    renderStatic();
    renderRegions();
    renderQueues();
    renderRisk();
    renderCharts();
  }

  function renderStatic() {
    document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('title');
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    const lang = $('lang');
    lang.textContent = state.lang === 'zh' ? 'English' : '中文';
    lang.setAttribute('lang', state.lang === 'zh' ? 'en' : 'zh-CN');
    $('live-text').textContent = t(`live.${state.live}`);
  }

  function renderRegions() {
    const select = $('region');
    const wanted = ['', ...[...state.counties].sort()];
    if (state.region && !wanted.includes(state.region)) wanted.push(state.region);
    select.replaceChildren(...wanted.map((c) => h('option', { value: c, text: c || t('region.all') })));
    select.value = state.region;
    $('region-wrap').hidden = !state.token;
  }

  function renderQueues() {
    const box = $('queues');
    if (!state.queues) return;
    if (!state.queues.length) { box.replaceChildren(h('p', { class: 'empty', text: t('queues.empty') })); return; }
    box.replaceChildren(...state.queues.map((q) => {
      // Warning levels: each ticket at its own level, in the configured scale's order.
      const byLevel = new Map((q.depth_by_level || []).map((l) => [l.level, l.depth]));
      const scale = ((state.scale && state.scale.warning_levels) || []).map((l) => l.name);
      const levels = [...scale, ...[...byLevel.keys()].filter((l) => !scale.includes(l))];
      // Priority bands, apart: a breach raises a ticket one band but leaves its level.
      const bands = (q.depth_by_band || []).slice().sort((a, b) => a.band - b.band);
      // Clocks stopped in the last 24 h and clocks breached and still running.
      const day = (q.sla || []).find((w) => w.window === '24h');
      const counted = day ? day.met + day.breached + (day.breached_running || 0) : 0;
      const compliance = day && day.compliance !== null && day.compliance !== undefined
        ? `${Math.round(day.compliance * 1000) / 10}% (${day.met}/${counted})`
        : t('na');
      const agents = q.agents_available ?? null;
      return h('article', { class: 'tile', 'data-testid': 'queue-tile', 'data-queue': q.name, 'data-depth': q.depth },
        h('h3', { text: queueTitle(q) }),
        h('div', { class: 'qname', text: q.name }),
        h('p', { class: 'depth' }, h('span', { 'data-testid': 'depth', text: q.depth }), ' ', h('small', { text: t('tile.waiting') })),
        h('div', { class: 'chips', title: t('tile.levels.title') },
          h('span', { class: 'chips-label', text: t('tile.levels') }),
          h('ul', { class: 'levels', 'aria-label': t('tile.levels.title') },
            levels.map((l) => levelChip(l, byLevel.get(l) || 0)))),
        h('div', { class: 'chips', title: t('tile.bands.title') },
          h('span', { class: 'chips-label', text: t('tile.bands') }),
          h('ul', { class: 'bands', 'aria-label': t('tile.bands.title') },
            bands.map((b) => h('li', { class: `band${b.depth ? '' : ' zero'}`, 'data-band': b.band,
              text: `${bandLabel(b.band)} ${b.depth}` })))),
        h('dl', {},
          h('dt', { text: t('tile.oldest') }), h('dd', { text: q.depth ? duration(q.oldest_age_seconds) : t('na') }),
          h('dt', { text: t('tile.sla') }), h('dd', { 'data-testid': 'sla-24h', text: compliance }),
          h('dt', { text: t('tile.agents') }), h('dd', { text: agents === null ? t('na') : agents })));
    }));
  }

  function riskTable(rows, over, emptyKey, testid) {
    if (!rows.length) return h('p', { class: 'empty', text: t(emptyKey) });
    const since = (Date.now() - state.riskAt) / 1000;
    return h('table', {},
      h('thead', {}, h('tr', {}, ['col.ticket', 'col.queue', 'col.clock', 'col.level', over ? 'col.over' : 'col.left', 'col.actions']
        .map((k) => h('th', { scope: 'col', text: t(k) })))),
      h('tbody', {}, rows.map((r) => {
        const left = r.seconds_left - since;
        return h('tr', { 'data-testid': testid, 'data-id': r.id },
          h('td', { class: 'mono', text: r.id }),
          h('td', { text: r.queue ? queueTitle({ name: r.queue, county: r.county }) : t('na') }),
          h('td', { class: 'nowrap', text: known('clock', r.clock) }),
          h('td', {}, h('ul', { class: 'levels inline' }, levelChip(r.warning_level))),
          h('td', { class: `num${over ? ' over' : ''}` },
            h('span', { class: 'countdown', 'data-left': r.seconds_left, text: duration(left) }),
            // A deadline counted through a year without holiday data (暂定): it may still move.
            r.provisional ? [' ', h('span', { class: 'provisional', 'data-testid': 'provisional',
              title: t('provisional.title'), text: t('provisional') })] : null),
          h('td', {}, h('div', { class: 'actions' }, ['escalate', 'raise', 'transfer'].map((a) =>
            h('button', { type: 'button', 'data-action': a, 'data-id': r.id, text: t(`action.${a}`) })))));
      })));
  }

  function renderRisk() {
    if (!state.risk) return;
    $('at-risk').replaceChildren(riskTable(state.risk.at_risk || [], false, 'risk.empty', 'risk-row'));
    $('breached').replaceChildren(riskTable(state.risk.breached || [], true, 'breached.empty', 'breached-row'));
  }

  // Counts down the time left or over between refreshes, locally: no request is made.
  function tickCountdowns() {
    const since = (Date.now() - state.riskAt) / 1000;
    for (const cell of document.querySelectorAll('.countdown')) {
      cell.textContent = duration(Number(cell.dataset.left) - since);
    }
  }

  function chartText(id, pairs) {
    $(id).textContent = pairs.map(([k, v]) => `${k} ${v}`).join('，');
  }

  function makeChart(id, config) {
    if (state.charts[id] || typeof Chart === 'undefined') return state.charts[id];
    Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
    state.charts[id] = new Chart($(id), Object.assign({ options: {} }, config));
    return state.charts[id];
  }

  function renderCharts() {
    const day = state.today;
    if (!day) return;
    $('today-date').textContent = day.date || '';
    const common = { animation: false, responsive: true, maintainAspectRatio: false };

    const cats = [...CATEGORIES, ...Object.keys(day.by_category || {}).filter((c) => !CATEGORIES.includes(c))];
    const catData = cats.map((c) => (day.by_category || {})[c] || 0);
    const catLabels = cats.map((c) => known('cat', c));
    const bar = makeChart('chart-category', {
      type: 'bar',
      data: { labels: [], datasets: [{ label: '', data: [], backgroundColor: '#1f5fbf' }] },
      options: Object.assign({}, common, { plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { ticks: { autoSkip: false } } } }),
    });

    const hours = Array.from({ length: 24 }, (_, i) => (day.by_hour || [])[i] || 0);
    const line = makeChart('chart-hour', {
      type: 'line',
      data: { labels: [], datasets: [{ label: '', data: [], borderColor: '#b42318', backgroundColor: '#b42318', tension: 0.2 }] },
      options: Object.assign({}, common, { plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }),
    });

    // Sources with no ticket today are left out of the pie: a zero slice draws as a stray line.
    const srcs = [...SOURCES, ...Object.keys(day.by_source || {}).filter((s) => !SOURCES.includes(s))]
      .filter((s) => (day.by_source || {})[s]);
    const srcData = srcs.map((s) => day.by_source[s]);
    const pie = makeChart('chart-source', {
      type: 'pie',
      data: { labels: [], datasets: [{ data: [], backgroundColor: SOURCE_COLOURS }] },
      options: Object.assign({}, common, { plugins: { legend: { position: 'bottom' } } }),
    });

    const count = t('charts.count');
    if (bar) {
      bar.data.labels = catLabels; bar.data.datasets[0].data = catData; bar.data.datasets[0].label = count; bar.update();
    }
    if (line) {
      line.data.labels = hours.map((_, i) => t('charts.hour.label', { h: i }));
      line.data.datasets[0].data = hours; line.data.datasets[0].label = count; line.update();
    }
    if (pie) {
      pie.data.labels = srcs.map((s) => known('source', s)); pie.data.datasets[0].data = srcData;
      // Each hotline keeps its colour whichever sources appear.
      pie.data.datasets[0].backgroundColor = srcs.map((s) => SOURCE_COLOURS[SOURCES.indexOf(s)] || SOURCE_COLOURS[3]);
      // A lone slice would show its border as a stray radius.
      pie.data.datasets[0].borderWidth = srcs.length > 1 ? 1 : 0;
      pie.update();
    }
    chartText('chart-category-text', cats.map((c, i) => [catLabels[i], catData[i]]).filter(([, v]) => v));
    chartText('chart-hour-text', hours.map((v, i) => [t('charts.hour.label', { h: i }), v]).filter(([, v]) => v));
    const counties = Object.keys(day.by_county || {}).sort();
    const countyData = counties.map((c) => day.by_county[c] || 0);
    const county = makeChart('chart-county', {
      type: 'bar',
      data: { labels: [], datasets: [{ label: '', data: [], backgroundColor: '#0f766e' }] },
      options: Object.assign({}, common, { plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }),
    });
    if (county) {
      county.data.labels = counties; county.data.datasets[0].data = countyData;
      county.data.datasets[0].label = count; county.update();
    }
    chartText('chart-county-text', counties.map((c, i) => [c, countyData[i]]));
    chartText('chart-source-text', srcs.map((s, i) => [known('source', s), srcData[i]]).filter(([, v]) => v));
  }

  // ---- Supervisor actions, through the same API the consoles use ----

  function openAction(action, id) {
    state.action = { action, id };
    $('action-h').textContent = t(`action.${action}`);
    $('action-ticket').textContent = id;
    $('service-row').hidden = action !== 'transfer';
    $('action-reason').value = '';
    $('action-error').textContent = '';
    $('action-msg').textContent = '';
    $('action-dialog').showModal();
    $('action-reason').focus();
  }

  async function submitAction(ev) {
    ev.preventDefault();
    const current = state.action;
    if (!current) return;
    const reason = $('action-reason').value.trim();
    if (!reason) { $('action-error').textContent = t('action.need_reason'); return; }
    const body = { reason };
    if (current.action === 'transfer') body.service = $('action-service').value;
    const submit = $('action-submit');
    submit.disabled = true;
    const name = t(`action.${current.action}`);
    try {
      await api('POST', `/v1/tickets/${encodeURIComponent(current.id)}/${current.action}`, body);
      $('action-dialog').close();
      state.action = null;
      showMessage(t('action.done', { action: name, id: current.id }), true);
      scheduleRefresh();
    } catch (e) {
      const text = t('action.failed', { action: name, detail: e.detail || String(e) });
      $('action-error').textContent = text;
      showMessage(text, false);
    } finally {
      submit.disabled = false;
    }
  }

  function showMessage(text, good) {
    const msg = $('action-msg');
    msg.textContent = text;
    msg.className = `action-msg ${good ? 'good' : 'bad'}`;
  }

  // ---- Sign-in ----

  function showBoard(on) {
    $('signin').hidden = on;
    $('board').hidden = !on;
    $('signout').hidden = !on;
    $('region-wrap').hidden = !on;
  }

  async function signIn(ev) {
    ev.preventDefault();
    const token = $('token').value.trim();
    if (!token) return;
    state.token = token;
    try {
      await api('GET', withRegion('/v1/queues'));
    } catch (e) {
      state.token = '';
      const key = e.status === 401 ? 'signin.bad' : e.status === 403 ? 'signin.role' : 'error.load';
      $('signin-error').textContent = t(key, { detail: e.detail });
      return;
    }
    sessionStorage.setItem('hl-dash-token', token);
    $('token').value = '';
    $('signin-error').textContent = '';
    start();
  }

  function start() {
    showBoard(true);
    render();
    connect(false);
    refresh();
  }

  function signOut(message) {
    disconnect();
    state.token = '';
    sessionStorage.removeItem('hl-dash-token');
    showBoard(false);
    $('signin-error').textContent = message || '';
    $('token').focus();
  }

  // ---- Wiring ----

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', () => signOut(''));
    $('lang').addEventListener('click', () => {
      state.lang = state.lang === 'zh' ? 'en' : 'zh';
      localStorage.setItem('hl-dash-lang', state.lang);
      // A message already shown stays in the language it was written in; drop it.
      $('action-msg').textContent = '';
      render();
    });
    $('region').addEventListener('change', (ev) => {
      state.region = ev.target.value;
      sessionStorage.setItem('hl-dash-region', state.region);
      state.queues = null;
      state.risk = null;
      state.lastEventId = '';
      state.generation += 1;
      connect(false);
      state.lastRefresh = 0;
      scheduleRefresh();
    });
    $('board').addEventListener('click', (ev) => {
      const button = ev.target.closest('button[data-action]');
      if (button) openAction(button.dataset.action, button.dataset.id);
    });
    $('action-form').addEventListener('submit', submitAction);
    $('action-cancel').addEventListener('click', () => { $('action-dialog').close(); state.action = null; });
    setInterval(tickCountdowns, 1000);
    render();
    if (state.token) start(); else showBoard(false);
  });
})();
