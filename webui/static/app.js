// mailagent's admin page, login and auth.htm. No framework, no build step;
// every value from the box goes in with textContent, never as markup.
'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var csrf = '';

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }
  function say(id, text, kind) {
    var e = $(id);
    if (!e) return;
    e.textContent = text || '';
    e.className = 'msg' + (kind ? ' ' + kind : '');
  }
  function when(s) { return s ? new Date(s).toLocaleString() : ''; }

  // call sends a request to the API and returns {status, body}.
  function call(method, path, body) {
    var h = { 'Accept': 'application/json' };
    if (method !== 'GET') h['X-CSRF-Token'] = csrf;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    return fetch(path, { method: method, headers: h, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) {
        if (r.status === 401 && path.indexOf('/api/') === 0) { location.href = '/login'; }
        return r.json().catch(function () { return {}; }).then(function (b) { return { status: r.status, body: b }; });
      });
  }
  function failText(b) { return (b.error || 'failed') + (b.hint ? ' – ' + b.hint : ''); }
  function showErrors(errs, prefix) {
    document.querySelectorAll('.err').forEach(function (e) { e.textContent = ''; });
    for (var k in errs || {}) {
      var e = $('err-' + k);
      if (e) e.textContent = errs[k];
      var i = $((prefix || 'key-') + k);
      if (i) i.setAttribute('aria-invalid', 'true');
    }
  }

  // ---- login and setup ----
  function formPost(form, path) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      say('form-msg', '…');
      fetch(path, { method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(new FormData(form)).toString() })
        .then(function (r) { return r.json().then(function (b) { return { status: r.status, body: b }; }); })
        .then(function (r) {
          if (r.status === 200) { location.href = '/'; return; }
          showErrors(r.body.errors, 'x');
          say('form-msg', failText(r.body), 'bad');
        }).catch(function () { say('form-msg', 'the box did not answer', 'bad'); });
    });
  }

  // ---- auth.htm: tell the admin page ----
  function authDone() {
    var res = document.body.getAttribute('data-result');
    if (res === 'continue') return;
    var msg = { type: 'mailagent-auth', ok: res === 'ok' };
    try { if (window.opener) window.opener.postMessage(msg, location.origin); } catch (e) { /* opener gone */ }
    try { new BroadcastChannel('mailagent').postMessage(msg); } catch (e) { /* old browser */ }
  }

  // ---- the admin page ----
  var cfg = null, modes = {}, orig = {};
  var mailKeys = ['mail.from', 'mail.from_name', 'mail.to', 'mail.to_name'];
  var smtpKeys = ['smtp.host', 'smtp.port', 'smtp.tls', 'smtp.auth', 'smtp.user', 'smtp.password'];
  var bigKeys = { 'oauth2.private_key': 1, 'oauth2.certificate': 1 };

  function field(k) {
    var id = 'key-' + k.key, input;
    var wrap = el('div', { 'class': 'field', id: 'fld-' + k.key });
    wrap.appendChild(el('label', { 'for': id }, k.key));
    if (k.enum || k.kind === 'boolean' || k.key === 'oauth2.mode') {
      input = el('select', { id: id });
      var opts = k.key === 'oauth2.mode' ? cfg.modes.map(function (m) { return m.name; }) : (k.enum || ['true', 'false']);
      input.appendChild(el('option', { value: '' }, k['default'] ? '(default: ' + k['default'] + ')' : '(not set)'));
      opts.forEach(function (o) { input.appendChild(el('option', { value: o }, o)); });
    } else if (bigKeys[k.key]) {
      input = el('textarea', { id: id, rows: 4, spellcheck: 'false' });
    } else {
      input = el('input', { id: id, type: k.kind === 'secret' ? 'password' : k.kind === 'date' ? 'date' : 'text',
        spellcheck: 'false', autocomplete: k.kind === 'secret' ? 'new-password' : 'off' });
    }
    if (k.kind === 'secret') {
      input.setAttribute('placeholder', k.set ? '(set – leave empty to keep)' : '(not set)');
    } else if (k['default'] && input.tagName !== 'SELECT') {
      input.setAttribute('placeholder', k['default']);
    }
    input.value = k.value || '';
    input.setAttribute('data-key', k.key);
    orig[k.key] = input.value;
    wrap.appendChild(input);
    if (k.kind === 'secret' && k.set) {
      var lab = el('label', { 'class': 'inline' });
      var cb = el('input', { type: 'checkbox', id: 'unset-' + k.key, 'data-unset': k.key });
      lab.appendChild(cb);
      lab.appendChild(document.createTextNode(' remove the stored value'));
      wrap.appendChild(lab);
    }
    wrap.appendChild(el('small', { 'class': 'help', id: 'help-' + k.key }, k.help));
    wrap.appendChild(el('div', { 'class': 'err', id: 'err-' + k.key }));
    return wrap;
  }

  function val(key) { var i = $('key-' + key); return i ? i.value : ''; }

  // layout shows the fields the chosen authentication and mode need.
  function layout() {
    var auth = val('smtp.auth') || (val('oauth2.mode') ? 'oauth2' : (val('smtp.user') ? 'password' : 'none'));
    ['smtp.user', 'smtp.password'].forEach(function (k) { $('fld-' + k).hidden = auth !== 'password'; });
    $('fs-oauth2').hidden = auth !== 'oauth2';
    var m = modes[val('oauth2.mode')];
    $('mode-grant').textContent = m ? m.grant : 'Choose the mode for your provider.';
    var box = $('f-oauth2'), other = $('f-other-oauth2');
    cfg.keys.forEach(function (k) {
      if (k.section === 'oauth2' && k.key !== 'oauth2.mode') other.appendChild($('fld-' + k.key));
    });
    (m ? m.fields : []).forEach(function (key) {
      var f = $('fld-' + key);
      if (!f) return;
      box.appendChild(f);
      $('help-' + key).textContent = (m.help && m.help[key]) || cfg.keys.filter(function (k) { return k.key === key; })[0].help;
    });
    $('redirect-box').hidden = !(m && m.interactive);
    $('import-box').hidden = !(m && (m.name === 'gmail' || m.name === 'google-service-account'));
    $('btn-authorize').disabled = !m || auth !== 'oauth2';
  }

  function loadConfig() {
    return call('GET', '/api/config').then(function (r) {
      if (r.status !== 200) { say('form-msg', failText(r.body), 'bad'); return; }
      cfg = r.body; modes = {}; orig = {};
      cfg.modes.forEach(function (m) { modes[m.name] = m; });
      ['f-mail', 'f-smtp', 'f-mode', 'f-oauth2', 'f-other'].forEach(function (id) { $(id).textContent = ''; });
      var placed = {};
      mailKeys.concat(smtpKeys).forEach(function (key) { placed[key] = 1; });
      var byKey = {};
      cfg.keys.forEach(function (k) { byKey[k.key] = k; });
      mailKeys.forEach(function (key) { $('f-mail').appendChild(field(byKey[key])); });
      smtpKeys.forEach(function (key) { $('f-smtp').appendChild(field(byKey[key])); });
      $('f-mode').appendChild(field(byKey['oauth2.mode']));
      var other = $('f-other');
      var oo = el('div', { id: 'f-other-oauth2' });
      other.appendChild(oo);
      cfg.keys.forEach(function (k) {
        if (placed[k.key] || k.key === 'oauth2.mode') return;
        (k.section === 'oauth2' ? oo : other).appendChild(field(k));
      });
      $('redirect-uri').textContent = cfg.redirect_uri;
      $('redirect-note').textContent = (cfg.redirect_suggested ? 'Suggested from this page\'s address; set oauth2.redirect_url to the one you register. ' : '') + (cfg.redirect_note || '');
      layout();
    });
  }

  // changes lists what the form changed since it was loaded.
  function changes() {
    var set = {}, unset = [], n = 0;
    document.querySelectorAll('[data-key]').forEach(function (i) {
      var k = i.getAttribute('data-key');
      var cb = $('unset-' + k);
      if (cb && cb.checked) { unset.push(k); n++; return; }
      if (i.value !== orig[k]) { set[k] = i.value; n++; }
    });
    return { set: set, unset: unset, n: n };
  }

  function save() {
    var c = changes();
    if (c.n === 0) return Promise.resolve(true);
    say('form-msg', 'saving…');
    var body = { set: c.set, unset: c.unset }, pw = $('reauth-password');
    if (pw.value) body.password = pw.value;
    return call('POST', '/api/config', body).then(function (r) {
      pw.value = '';
      if (r.status !== 200) {
        showErrors(r.body.errors);
        if (r.body.errors && r.body.errors.password) { $('reauth').hidden = false; pw.focus(); }
        say('form-msg', failText(r.body), 'bad');
        return false;
      }
      $('reauth').hidden = true;
      showErrors({});
      return loadConfig().then(function () {
        var p = r.body.problems || [];
        p.forEach(function (e) { var x = $('err-' + e.key); if (x) x.textContent = 'still missing: ' + e.message; });
        say('form-msg', 'Saved.' + (p.length ? ' Mail cannot be sent until the fields marked are filled in.' : ''), p.length ? 'warn' : 'ok');
        loadStatus();
        return true;
      });
    });
  }

  function dl(rows) {
    var d = $('status');
    d.textContent = '';
    rows.forEach(function (r) {
      if (!r || !r[1]) return;
      d.appendChild(el('dt', null, r[0]));
      d.appendChild(el('dd', r[2] ? { 'class': r[2] } : null, r[1]));
    });
  }

  function loadStatus() {
    return call('GET', '/api/status').then(function (r) {
      var s = r.body;
      if (r.status !== 200) { dl([['status', failText(s), 'bad']]); return; }
      var rows = [];
      var q = s.queue || {}, d = s.delivery || {}, t = s.oauth2;
      rows.push(['agent', s.agent_running ? 'running on board ' + s.board : 'not running', s.agent_running ? 'ok' : 'bad']);
      if (s.clock !== 'ok') rows.push(['clock', s.clock, 'bad']);
      (s.warnings || []).forEach(function (w) { rows.push(['warning', w, 'warn']); });
      if (s.problems && s.problems.length) {
        rows.push(['configuration', 'mail cannot be sent yet: ' + s.problems.map(function (p) { return (p.key ? p.key + ': ' : '') + p.message; }).join('; '), 'bad']);
      } else {
        rows.push(['configuration', 'ok: mail goes from ' + s.mail_from + ' to ' + (s.mail_to || []).join(', ') + ' through ' + s.smtp_server, 'ok']);
      }
      rows.push(['authentication', s.auth]);
      if (t) {
        rows.push(['token', t.summary + (t.mode ? ' (mode ' + t.mode + ')' : ''), t.state === 'ok' && t.summary.indexOf('not') !== 0 ? 'ok' : 'bad']);
        if (t.expiry) rows.push(['token expires', when(t.expiry)]);
        if (t.last_error) rows.push(['last token error', t.last_error + (t.last_error_at ? ' (' + when(t.last_error_at) + ')' : ''), 'bad']);
        if (t.next_try) rows.push(['next token try', when(t.next_try)]);
        if (t.fix) rows.push(['what to do', t.fix, 'warn']);
      }
      rows.push(['last alarm mail', d.last_mail ? when(d.last_mail) + ': ' + d.last_reply : 'none since the agent started']);
      if (d.failing) {
        rows.push(['delivery', 'FAILING: ' + d.failing + (d.failures ? ' (' + d.failures + ' tries in a row)' : ''), 'bad']);
        if (d.hint) rows.push(['what to do', d.hint, 'warn']);
        if (d.next_try) rows.push(['next try', when(d.next_try)]);
      }
      rows.push(['queue', q.memory + ' in memory, ' + q.spooled + ' on flash' + (q.oldest ? ', oldest ' + when(q.oldest) : '')]);
      if (q.dropped) rows.push(['dropped', q.dropped + ' (not yet reported)', 'warn']);
      if (q.set_aside) rows.push(['damaged', q.set_aside + ' spool records could not be read and are kept as spool/*.bad (newest ' + q.newest_bad + '): look at them, then delete them', 'warn']);
      if (t && t.secret_expires) rows.push(['client secret', 'expires ' + t.secret_expires + ' (' + t.secret_days_left + ' days)' + (t.secret_note ? ': ' + t.secret_note : ''), t.secret_note ? 'warn' : '']);
      dl(rows);
    });
  }

  function loadAlarms() {
    return call('GET', '/api/alarms').then(function (r) {
      var tb = $('alarms').tBodies[0];
      tb.textContent = '';
      var list = (r.body && r.body.alarms) || [];
      $('alarms-empty').hidden = list.length > 0;
      list.forEach(function (a) {
        var tr = el('tr');
        [when(a.at), a.alarm.severity, a.alarm.code, a.alarm.source || '', a.alarm.text, a.result].forEach(function (v) { tr.appendChild(el('td', null, v)); });
        tb.appendChild(tr);
      });
    });
  }

  function authorised(ok) {
    say('form-msg', ok ? 'Authorised.' : 'The authorisation failed: see the window it ran in.', ok ? 'ok' : 'bad');
    loadStatus();
  }

  function authorize() {
    save().then(function (ok) {
      if (!ok) return;
      say('form-msg', 'authorising…');
      call('POST', '/api/authorize', {}).then(function (r) {
        if (r.status !== 200) { showErrors(r.body.errors); say('form-msg', failText(r.body), 'bad'); return; }
        if (r.body.account) { say('form-msg', 'Authorised as ' + r.body.account + '.', 'ok'); loadStatus(); return; }
        if (r.body.paste) { say('paste-msg', r.body.note, 'warn'); $('paste-box').classList.add('hl'); }
        var w = window.open(r.body.url, 'mailagent-auth', 'width=560,height=720');
        say('form-msg', w ? 'Sign in in the new window.' : 'The browser blocked the window: allow pop-ups for this page and press Authorise again.', w ? '' : 'bad');
      });
    });
  }

  function paste() {
    say('paste-msg', '…');
    call('POST', '/api/authorize/paste', { url: $('paste-url').value }).then(function (r) {
      if (r.status === 200) {
        showErrors({});
        say('paste-msg', 'Authorised as ' + r.body.account + '.', 'ok');
        $('paste-url').value = '';
        loadStatus();
        return;
      }
      var t = failText(r.body);
      if (r.body.provider_error) t += ' (the provider said: ' + r.body.provider_error + (r.body.provider_error_description ? ': ' + r.body.provider_error_description : '') + ')';
      showErrors(r.body.errors);
      say('paste-msg', t, 'bad');
    });
  }

  function testMail() {
    save().then(function (ok) {
      if (!ok) return;
      $('test-box').hidden = false;
      $('test-steps').textContent = '';
      say('test-msg', 'sending…');
      call('POST', '/api/test', {}).then(function (r) {
        (r.body.steps || []).forEach(function (s) { $('test-steps').appendChild(el('li', null, s.step + ': ' + s.detail)); });
        if (r.body.ok) say('test-msg', 'The server accepted the mail: ' + r.body.reply, 'ok');
        else say('test-msg', failText(r.body), 'bad');
        loadStatus();
      });
    });
  }

  function importFile() {
    var f = $('import-file').files[0];
    if (!f) { $('err-data').textContent = 'choose the file first'; return; }
    f.text().then(function (text) {
      return call('POST', '/api/import', { kind: $('import-kind').value, data: text });
    }).then(function (r) {
      if (r.status !== 200) { showErrors(r.body.errors); say('import-msg', failText(r.body), 'bad'); return; }
      say('import-msg', 'Imported.', 'ok');
      loadConfig(); loadStatus();
    });
  }

  function copyRedirect() {
    var t = $('redirect-uri').textContent;
    var done = function () { say('redirect-note', 'Copied.', 'ok'); };
    if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(t).then(done); return; }
    var r = document.createRange();
    r.selectNodeContents($('redirect-uri'));
    var sel = window.getSelection();
    sel.removeAllRanges(); sel.addRange(r);
    try { if (document.execCommand('copy')) done(); } catch (e) { /* the text stays selected */ }
  }

  function passwd(ev) {
    ev.preventDefault();
    call('POST', '/api/passwd', { old: $('passwd-old').value, 'new': $('passwd-new').value, new2: $('passwd-new2').value }).then(function (r) {
      if (r.status !== 200) { showErrors(r.body.errors, 'passwd-'); say('passwd-msg', failText(r.body), 'bad'); return; }
      csrf = r.body.csrf;
      ['passwd-old', 'passwd-new', 'passwd-new2'].forEach(function (id) { $(id).value = ''; });
      showErrors({});
      say('passwd-msg', 'Password changed; other sessions were logged out.', 'ok');
    });
  }

  function admin() {
    call('GET', '/api/session').then(function (r) {
      if (r.status !== 200) return;
      csrf = r.body.csrf;
      $('who').textContent = r.body.user;
      loadConfig(); loadStatus(); loadAlarms();
    });
    $('cfg-form').addEventListener('submit', function (ev) { ev.preventDefault(); save(); });
    $('cfg-form').addEventListener('change', function (ev) {
      var k = ev.target.getAttribute('data-key');
      if (k === 'smtp.auth' || k === 'oauth2.mode') layout();
    });
    $('btn-authorize').addEventListener('click', authorize);
    $('btn-test').addEventListener('click', testMail);
    $('btn-paste').addEventListener('click', paste);
    $('btn-import').addEventListener('click', importFile);
    $('btn-copy').addEventListener('click', copyRedirect);
    $('passwd-form').addEventListener('submit', passwd);
    $('btn-logout').addEventListener('click', function () {
      call('POST', '/logout').then(function () { location.href = '/login'; });
    });
    window.addEventListener('message', function (ev) {
      if (ev.origin === location.origin && ev.data && ev.data.type === 'mailagent-auth') authorised(ev.data.ok);
    });
    try {
      new BroadcastChannel('mailagent').onmessage = function (ev) { if (ev.data && ev.data.type === 'mailagent-auth') authorised(ev.data.ok); };
    } catch (e) { /* old browser: the status refreshes below */ }
    setInterval(function () { if (!document.hidden) { loadStatus(); loadAlarms(); } }, 30000);
  }

  document.addEventListener('DOMContentLoaded', function () {
    var page = document.body.getAttribute('data-page');
    if (page === 'admin') admin();
    if (page === 'auth') authDone();
    if (page === 'login') {
      if ($('login-form')) formPost($('login-form'), '/login');
      if ($('setup-form')) formPost($('setup-form'), '/setup');
    }
  });
})();
