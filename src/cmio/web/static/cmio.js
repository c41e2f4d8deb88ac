// cmio page script: draws the Vega-Lite charts of a page (CSP-safe: the specs are
// JSON data blocks and Vega runs with its expression interpreter, no eval).
(function () {
  "use strict";
  var loading = null;

  function loadVega() {
    if (window.vegaEmbed) { return Promise.resolve(); }
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = "/static/vega.js";
        script.onload = function () { resolve(); };
        script.onerror = function () { reject(new Error("could not load /static/vega.js")); };
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  function drawCharts(root) {
    var holders = (root || document).querySelectorAll(".vl-chart:not([data-drawn])");
    if (!holders.length) { return; }
    loadVega().then(function () {
      holders.forEach(function (holder) {
        var data = holder.parentNode.querySelector("script.vl-spec");
        if (!data) { return; }
        holder.setAttribute("data-drawn", "1");
        var spec = JSON.parse(data.textContent);
        // ast: Vega-Embed's bundled expression interpreter instead of eval
        window.vegaEmbed(holder, spec, { actions: false, renderer: "svg", ast: true }).catch(function (error) {
          holder.textContent = "The chart could not be drawn: " + error.message;
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
  // content swapped in for a "computing" placeholder (htmx:load fires on new content)
  document.addEventListener("htmx:load", function (event) {
    drawCharts(event.target.parentNode || document);
  });
})();
