/* cxm survey widget: one NPS question (and an optional comment) on any page.
   <script src="https://YOUR-CXM/assets/cxm-survey.js" data-key="cxm_wk_..." data-survey="website"
           data-question="How likely are you to recommend us?" data-identifier="user_id:42"></script>
   Uses a write key, which can only send answers. No dependencies, no cookies. */
(function () {
  var me = document.currentScript;
  if (!me) return;
  var base = new URL(me.src).origin;
  var key = me.getAttribute("data-key");
  var survey = me.getAttribute("data-survey") || "widget";
  var question = me.getAttribute("data-question") || "How likely are you to recommend us to a friend or colleague?";
  var identifier = me.getAttribute("data-identifier");
  var response = "w-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
  var box = document.createElement("section");
  box.setAttribute("aria-label", "Feedback");
  box.setAttribute("data-cxm-widget", "");
  box.style.cssText = "position:fixed;bottom:1rem;right:1rem;max-width:26rem;background:#fff;color:#222;border:1px solid #ccc;border-radius:.6rem;padding:1rem;font:14px system-ui,sans-serif;box-shadow:0 4px 16px rgba(0,0,0,.15);z-index:2147483000";
  var p = document.createElement("p");
  p.textContent = question;
  p.style.margin = "0 0 .5rem";
  box.appendChild(p);
  var row = document.createElement("div");
  row.setAttribute("role", "group");
  row.setAttribute("aria-label", question);
  row.style.cssText = "display:flex;flex-wrap:wrap;gap:.2rem";
  box.appendChild(row);
  function send(answers, done) {
    var x = new XMLHttpRequest();
    x.open("POST", base + "/api/v1/feedback");
    x.setRequestHeader("Authorization", "Bearer " + key);
    x.setRequestHeader("Content-Type", "application/json");
    x.onload = function () { done(x.status === 200); };
    x.onerror = function () { done(false); };
    x.send(JSON.stringify({ answers: answers }));
  }
  function answer(q, type, value) {
    var a = { response_id: response, question: q, type: type, value: value, channel: "web", survey_id: survey };
    if (identifier) a.identifier = identifier;
    return a;
  }
  function thanks(ok) {
    box.innerHTML = "";
    var t = document.createElement("p");
    t.setAttribute("role", "status");
    t.style.margin = "0";
    t.textContent = ok ? "Thank you for your feedback!" : "Sorry, your feedback could not be sent.";
    box.appendChild(t);
    setTimeout(function () { if (box.parentNode) box.parentNode.removeChild(box); }, 4000);
  }
  function comment(score) {
    row.innerHTML = "";
    p.textContent = "Thanks! What is the main reason for your score?";
    var ta = document.createElement("textarea");
    ta.setAttribute("aria-label", "Reason for your score");
    ta.rows = 3;
    ta.style.cssText = "width:100%;box-sizing:border-box";
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = "Send";
    b.onclick = function () {
      var text = ta.value.trim();
      if (!text) return thanks(true);
      send([answer("why", "text", text)], thanks);
    };
    row.appendChild(ta);
    row.appendChild(b);
    ta.focus();
  }
  for (var i = 0; i <= 10; i++) {
    (function (score) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = String(score);
      b.setAttribute("aria-label", "Score " + score + " of 10");
      b.style.cssText = "min-width:2rem;padding:.3rem;cursor:pointer";
      b.onclick = function () {
        send([answer("nps", "nps", score)], function (ok) { ok ? comment(score) : thanks(false); });
      };
      row.appendChild(b);
    })(i);
  }
  function mount() { document.body.appendChild(box); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
