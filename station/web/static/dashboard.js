// Live alert feed: server-sent events append alerts not yet on the page.
(function () {
  var feed = document.getElementById("alert-feed");
  if (!feed || !window.EventSource) { return; }
  var csrf = document.body.dataset.csrf, ackLabel = document.body.dataset.ack;
  var source = new EventSource("/alerts/stream");
  source.addEventListener("alert", function (message) {
    var a = JSON.parse(message.data);
    if (document.getElementById("alert-" + a.id)) { return; }
    var empty = document.getElementById("no-alerts");
    if (empty) { empty.remove(); }
    var li = document.createElement("li");
    li.id = "alert-" + a.id;
    var strong = document.createElement("strong");
    strong.textContent = a.label;
    li.appendChild(strong);
    li.appendChild(document.createTextNode(" " + a.site + "/" + a.gateway + " " + (a.unit || a.key) + " " + a.ts.slice(0, 19) + " "));
    var form = document.createElement("form");
    form.method = "post"; form.action = "/alerts/" + encodeURIComponent(a.id) + "/ack"; form.className = "inline";
    var token = document.createElement("input");
    token.type = "hidden"; token.name = "csrf"; token.value = csrf;
    var button = document.createElement("button");
    button.type = "submit"; button.textContent = ackLabel;
    form.appendChild(token); form.appendChild(button); li.appendChild(form);
    feed.insertBefore(li, feed.firstChild);
  });
})();
