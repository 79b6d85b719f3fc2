// envvault dashboard: progressive enhancement only. Every form works
// without this file; with it, Add opens in a dialog, secret names are
// checked as they are typed, a value being typed is masked with a
// show/hide toggle, the agent checklist is disabled under "All profiles",
// and a running task's log streams in.
(function () {
  "use strict";

  var NAME_RE = /^[A-Z_][A-Z0-9_]*$/;
  var NAME_RULE = "must use only upper-case letters, digits and underscores, not starting with a digit";

  // Add opens its form in a modal <dialog> instead of going to the Add page.
  document.querySelectorAll("a[data-dialog]").forEach(function (link) {
    var dialog = document.getElementById(link.getAttribute("data-dialog"));
    if (!dialog || typeof dialog.showModal !== "function") {
      return; // the link goes to the Add page, which works everywhere
    }
    var form = dialog.querySelector("form");
    link.addEventListener("click", function (e) {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) {
        return; // a new tab or window gets the page
      }
      e.preventDefault();
      dialog.showModal();
      var first = dialog.querySelector("input:not([type=hidden]), textarea, select");
      if (first) {
        first.focus();
      }
    });
    dialog.querySelectorAll("[data-close]").forEach(function (el) {
      el.addEventListener("click", function (e) {
        e.preventDefault();
        dialog.close();
      });
    });
    dialog.addEventListener("close", function () {
      // A closed dialog keeps nothing typed, above all not a value.
      if (form) {
        form.reset();
        form.querySelectorAll("[data-secret-value]").forEach(function (t) {
          t.dispatchEvent(new Event("envvault:hide"));
        });
        form.querySelectorAll("[data-scope-all]").forEach(function (r) {
          r.dispatchEvent(new Event("change", { bubbles: true }));
        });
        form.querySelectorAll("[data-name-check]").forEach(function (input) {
          input.dispatchEvent(new Event("input"));
        });
      }
      link.focus();
    });
  });

  // Secret names are checked as they are typed, against the rule the
  // server checks again. Nothing is upper-cased behind the user's back.
  document.querySelectorAll("input[data-name-check]").forEach(function (input) {
    var out = document.getElementById(input.id + "-error");
    var field = input.closest(".field");
    var serverMsg = out ? out.textContent : "";
    var serverValue = input.value;
    input.addEventListener("input", function () {
      var v = input.value;
      var bad = v !== "" && !NAME_RE.test(v);
      var msg = "";
      if (bad) {
        msg = NAME_RULE;
        if (NAME_RE.test(v.toUpperCase())) {
          msg += ". Did you mean " + v.toUpperCase() + "?";
        }
      } else if (v === serverValue) {
        msg = serverMsg; // the server's word on this very name stands
      }
      input.setCustomValidity(bad ? "Name " + NAME_RULE : "");
      if (msg) {
        input.setAttribute("aria-invalid", "true");
      } else {
        input.removeAttribute("aria-invalid");
      }
      if (field) {
        field.classList.toggle("invalid", msg !== "");
      }
      if (out) {
        out.textContent = msg;
      }
    });
  });

  // A value field is masked while it is typed, like a password, with a
  // button to show it. (Without JavaScript it is a plain textarea, as
  // GitHub's secret form is.) The textarea keeps every byte either way.
  document.querySelectorAll("textarea[data-secret-value]").forEach(function (area) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button quiet toggle-value";
    button.setAttribute("aria-controls", area.id);
    var noun = area.getAttribute("data-secret-value") || "value";
    function set(shown) {
      area.classList.toggle("masked", !shown);
      button.setAttribute("aria-pressed", shown ? "true" : "false");
      button.textContent = (shown ? "Hide " : "Show ") + noun;
    }
    set(false);
    button.addEventListener("click", function () {
      set(area.classList.contains("masked"));
    });
    area.addEventListener("envvault:hide", function () {
      set(false);
    });
    var label = document.querySelector("label[for='" + area.id + "']");
    var row = document.createElement("div");
    row.className = "label-row";
    if (label) {
      label.parentNode.insertBefore(row, label);
      row.appendChild(label);
    } else {
      area.parentNode.insertBefore(row, area);
    }
    row.appendChild(button);
  });

  // Under "All profiles" the agent checklist does not apply: its boxes are
  // disabled, so that none can be ticked (the server refuses ticks sent
  // with "All profiles" when this script does not run).
  document.querySelectorAll("fieldset.scope").forEach(function (set) {
    var all = set.querySelector("[data-scope-all]");
    if (!all) {
      return;
    }
    var agents = set.querySelector("fieldset.agents");
    function update() {
      if (agents) {
        agents.disabled = all.checked; // and so every box in it
      }
    }
    set.addEventListener("change", update);
    update();
  });

  // A running task's log streams in; when the task ends the page reloads
  // to show how it ended. (Without JavaScript the page refreshes itself.)
  var log = document.querySelector("pre[data-follow]");
  if (log && window.fetch && window.TextDecoder && window.ReadableStream) {
    fetch(log.getAttribute("data-follow"), { credentials: "same-origin", cache: "no-store" })
      .then(function (res) {
        if (!res.ok || !res.body) {
          throw new Error("HTTP " + res.status);
        }
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var first = true;
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) {
              // Reload without the query, so a one-time notice does not
              // show again.
              window.location.replace(window.location.pathname);
              return undefined;
            }
            var stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
            if (first) {
              log.textContent = ""; // the stream starts from the beginning
              first = false;
            }
            log.appendChild(document.createTextNode(decoder.decode(r.value, { stream: true })));
            if (stick) {
              log.scrollTop = log.scrollHeight;
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function () {
        var note = document.querySelector(".following");
        if (note) {
          note.textContent = "The live log stopped: reload the page to see more.";
        }
      });
  }
})();
