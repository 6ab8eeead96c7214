// The doc site's script (generated/docs/assets/site.js): a classic script, so that it
// runs from file:// too. On the index, the search box filters the service cards as you
// type over S402_SEARCH (search-data.js: every service's ids, names in English
// and Chinese, aliases and catalog searchText); on a service page, each example gets a Copy
// button, and a page served by a gateway shows that gateway's address in the examples.
"use strict";
(function () {
  var WORD = /[a-z0-9]+|[^\x00-\x7f]+/g; // as the gateway's catalog search splits words

  function words(text) {
    return text.toLowerCase().match(WORD) || [];
  }

  function setUpSearch() {
    var input = document.getElementById("service-search");
    var data = window.S402_SEARCH;
    if (!input || !data) return;
    var status = document.getElementById("search-status");
    var none = document.getElementById("no-results");
    var texts = {};
    data.forEach(function (entry) { texts[entry.id] = entry.text; });
    var cards = Array.prototype.slice.call(document.querySelectorAll("[data-service]"));
    var sections = Array.prototype.slice.call(document.querySelectorAll("section.category"));

    function apply() {
      var query = words(input.value);
      var shown = 0;
      cards.forEach(function (card) {
        var text = texts[card.getAttribute("data-service")] || "";
        var match = query.every(function (word) { return text.indexOf(word) !== -1; });
        card.hidden = !match;
        if (match) shown += 1;
      });
      sections.forEach(function (section) {
        section.hidden = !section.querySelector("[data-service]:not([hidden])");
      });
      none.hidden = shown !== 0;
      status.textContent = query.length
        ? shown + " of " + cards.length + " services match"
        : cards.length + " services";
    }

    input.addEventListener("input", apply);
    var params = new URLSearchParams(window.location.search);
    if (params.get("q")) input.value = params.get("q");
    if (input.value) apply();
  }

  function setUpExamples() {
    var served = /^https?:$/.test(window.location.protocol);
    Array.prototype.forEach.call(document.querySelectorAll("pre.example"), function (pre) {
      var code = pre.querySelector("code");
      if (served) code.textContent = code.textContent.split("http://127.0.0.1:8402").join(window.location.origin);
      if (!navigator.clipboard) return;
      var wrap = document.createElement("div");
      wrap.className = "example-wrap";
      pre.parentNode.insertBefore(wrap, pre);
      wrap.appendChild(pre);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = "Copy";
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(code.textContent).then(
          function () { button.textContent = "Copied"; },
          function () { button.textContent = "Copy failed"; }
        );
      });
      wrap.appendChild(button);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpSearch();
    setUpExamples();
  });
})();
