// The dashboard's accessibility check, run in Chromium by
// TestAccessibility (a11y_test.go); not served. It returns the list of
// failures on the page as strings, [] when there is none:
//   - text contrast (WCAG 2.2, 1.4.3): 4.5:1, or 3:1 for large text (24px,
//     or 18.66px bold), computed from the styles, the backgrounds behind
//     the text blended through their alpha and every ancestor's opacity;
//     disabled controls and their labels are exempt, as WCAG says;
//   - non-text contrast (1.4.11): the focus ring of every focusable
//     element (its outline, drawn when it has :focus-visible) and the
//     border of every text input, select and textarea, 3:1 against what
//     is behind them;
//   - every form control and link has an accessible name;
//   - exactly one h1; no two elements share an id.
(function () {
  "use strict";
  var failures = [];
  function fail(el, msg) {
    var id = el.id ? "#" + el.id : "";
    var cls = el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "";
    failures.push(el.tagName.toLowerCase() + id + cls + ": " + msg);
  }

  function parse(c) {
    var m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) {
      return null; // a color this check cannot read: reported by the caller
    }
    var p = m[1].split(/[\s,\/]+/).filter(Boolean).map(parseFloat);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  }
  function over(top, bottom) { // top composited over opaque bottom
    var a = top.a;
    return { r: top.r * a + bottom.r * (1 - a), g: top.g * a + bottom.g * (1 - a), b: top.b * a + bottom.b * (1 - a), a: 1 };
  }
  function lum(c) {
    function ch(v) {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    }
    return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
  }
  function ratio(a, b) {
    var la = lum(a), lb = lum(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }
  // The opaque color behind el: its own background and its ancestors',
  // composited from the canvas up.
  function background(el, includeSelf) {
    var chain = [];
    for (var n = includeSelf ? el : el.parentElement; n; n = n.parentElement) {
      chain.push(n);
    }
    var canvas = parse(getComputedStyle(document.documentElement).backgroundColor);
    var bg = canvas && canvas.a > 0 ? canvas : parse(getComputedStyle(document.body).backgroundColor);
    if (!bg || bg.a === 0) {
      bg = { r: 255, g: 255, b: 255, a: 1 };
    }
    bg = over(bg, { r: 255, g: 255, b: 255, a: 1 });
    for (var i = chain.length - 1; i >= 0; i--) {
      var c = parse(getComputedStyle(chain[i]).backgroundColor);
      if (c && c.a > 0) {
        bg = over(c, bg);
      }
    }
    return bg;
  }
  function opacity(el) {
    var o = 1;
    for (var n = el; n; n = n.parentElement) {
      o *= parseFloat(getComputedStyle(n).opacity);
    }
    return o;
  }
  function visible(el) {
    var s = getComputedStyle(el);
    if (s.visibility === "hidden" || s.display === "none") {
      return false;
    }
    var r = el.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) {
      return false;
    }
    return el.getClientRects().length > 0 && !el.closest("dialog:not([open])") && !el.closest(".visually-hidden");
  }
  function disabled(el) {
    var label = el.closest("label");
    var control = label && (label.control || label.querySelector("input, select, textarea, button"));
    return el.matches(":disabled") || (control && control.disabled) || !!el.closest("fieldset:disabled");
  }

  // Text contrast.
  var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  var seen = new Set();
  for (var t = walker.nextNode(); t; t = walker.nextNode()) {
    var el = t.parentElement;
    if (!t.textContent.trim() || seen.has(el) || !visible(el) || disabled(el)) {
      continue;
    }
    seen.add(el);
    var s = getComputedStyle(el);
    var fg = parse(s.color);
    if (!fg) {
      fail(el, "text color " + s.color + " cannot be read");
      continue;
    }
    var bg = background(el, true);
    var shown = over({ r: fg.r, g: fg.g, b: fg.b, a: fg.a * opacity(el) }, bg);
    var size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
    var need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    var r = ratio(shown, bg);
    if (r < need) {
      fail(el, "text contrast " + r.toFixed(2) + ":1 < " + need + ":1 (" + s.color + " on rgb(" + [bg.r, bg.g, bg.b].map(Math.round) + ")): “" + t.textContent.trim().slice(0, 40) + "”");
    }
  }

  // Focus rings and input borders.
  var focusables = document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]");
  var active = document.activeElement;
  focusables.forEach(function (el) {
    // A container focused only by script or a skip link (tabindex -1)
    // needs no ring, unless it takes the focus by itself (autofocus).
    if (!visible(el) || el.disabled || (el.tabIndex < 0 && !el.hasAttribute("autofocus"))) {
      return;
    }
    el.focus({ focusVisible: true });
    if (document.activeElement !== el) {
      return; // not focusable after all (tabindex on a hidden part)
    }
    var s = getComputedStyle(el);
    var width = parseFloat(s.outlineWidth);
    if (!el.matches(":focus-visible")) {
      fail(el, "focus does not show as :focus-visible");
    } else if (s.outlineStyle === "none" || width < 2) {
      fail(el, "no focus ring (outline " + s.outlineStyle + " " + s.outlineWidth + ")");
    } else {
      var ring = parse(s.outlineColor);
      var behind = background(el, false);
      var r = ring ? ratio(over(ring, behind), behind) : 0;
      if (r < 3) {
        fail(el, "focus ring contrast " + r.toFixed(2) + ":1 < 3:1 (" + s.outlineColor + ")");
      }
    }
    el.blur();
  });
  if (active && active.focus) {
    active.focus();
  }
  document.querySelectorAll("input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea").forEach(function (el) {
    if (!visible(el) || el.disabled) {
      return;
    }
    var s = getComputedStyle(el);
    var border = parse(s.borderTopColor);
    var behind = background(el, false), inside = background(el, true);
    if (!border || parseFloat(s.borderTopWidth) < 1) {
      fail(el, "no border");
      return;
    }
    var shown = over(border, behind);
    var r = Math.min(ratio(shown, behind), ratio(over(border, inside), inside));
    if (r < 3) {
      fail(el, "border contrast " + r.toFixed(2) + ":1 < 3:1 (" + s.borderTopColor + ")");
    }
  });

  // Names.
  function named(el) {
    if ((el.getAttribute("aria-label") || "").trim()) {
      return true;
    }
    var by = el.getAttribute("aria-labelledby");
    if (by && by.split(/\s+/).some(function (id) { var x = document.getElementById(id); return x && x.textContent.trim(); })) {
      return true;
    }
    if (el.labels && Array.prototype.some.call(el.labels, function (l) { return l.textContent.trim(); })) {
      return true;
    }
    if (/^(A|BUTTON|SUMMARY)$/.test(el.tagName) && el.textContent.trim()) {
      return true;
    }
    return !!(el.getAttribute("title") || "").trim();
  }
  document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, [role=button]").forEach(function (el) {
    if (!named(el)) {
      fail(el, "has no accessible name");
    }
  });

  var h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) {
    failures.push("the page has " + h1 + " h1 elements, want 1");
  }
  var ids = {};
  document.querySelectorAll("[id]").forEach(function (el) {
    ids[el.id] = (ids[el.id] || 0) + 1;
  });
  Object.keys(ids).forEach(function (id) {
    if (ids[id] > 1) {
      failures.push("id " + id + " is used " + ids[id] + " times");
    }
  });
  return failures;
})();
