// Runs before the dashboard's modules, as a classic script, so that whatever stops them (a file that
// does not load, a browser without import maps, an exception at start) is shown instead of a blank
// page. app.js sets document.documentElement.dataset.started once it has drawn.
(function () {
  'use strict';
  var shown = false;
  function show(text) {
    if (shown || document.documentElement.dataset.started === 'yes') return;
    shown = true;
    var app = document.getElementById('app');
    if (!app) return;
    app.textContent = '';
    var box = document.createElement('div');
    box.className = 'fatal';
    box.setAttribute('role', 'alert');
    var h = document.createElement('h2');
    h.textContent = 'The dashboard could not start';
    var p = document.createElement('p');
    p.textContent = text;
    var hint = document.createElement('p');
    hint.textContent = 'Reload the page. If it keeps failing, ebb status --watch shows the same from a terminal.';
    box.appendChild(h);
    box.appendChild(p);
    box.appendChild(hint);
    app.appendChild(box);
  }
  // Resource errors do not bubble, so listen in the capture phase.
  window.addEventListener(
    'error',
    function (e) {
      var t = e.target;
      if (t && t !== window && (t.tagName === 'SCRIPT' || t.tagName === 'LINK')) {
        show('A file of the page did not load: ' + (t.src || t.href) + '.');
      } else if (e.message) {
        show('An error stopped it: ' + e.message);
      }
    },
    true,
  );
  window.addEventListener('DOMContentLoaded', function () {
    setTimeout(function () {
      show('It did not start within 15 seconds (a script did not load or run).');
    }, 15000);
  });
})();
