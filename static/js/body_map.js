// The body map on the lesion form: choosing a region sets the anatomic site, the side and the
// region; the drop-downs stay the form (and the way to choose without a pointer or script).
// Regions are buttons: Tab reaches them, Enter or Space chooses one.
(function () {
  "use strict";
  var picker = document.querySelector("[data-body-map-picker]");
  if (!picker) { return; }
  var site = document.getElementById("id_anatomic_site");
  var side = document.getElementById("id_laterality");
  var region = document.getElementById("id_body_map_region");
  var choice = document.getElementById("body-map-choice");
  if (!site || !side || !region) { return; }
  var regions = Array.prototype.slice.call(picker.querySelectorAll(".region"));
  picker.hidden = false;

  function show(chosen) {
    regions.forEach(function (el) {
      el.setAttribute("aria-pressed", el === chosen ? "true" : "false");
      el.classList.toggle("matches", !chosen && el.getAttribute("data-site") === site.value);
    });
    if (chosen) {
      choice.textContent = "Chosen on the map: " + chosen.getAttribute("data-label") + ".";
    } else if (site.value) {
      choice.textContent = "Chosen from the list: " + site.options[site.selectedIndex].text +
        ". Regions of that site are outlined; choose one to mark the exact place.";
    } else {
      choice.textContent = "";
    }
  }

  function choose(el) {
    site.value = el.getAttribute("data-site");
    var laterality = el.getAttribute("data-laterality");
    if (laterality) { side.value = laterality; }
    region.value = el.getAttribute("data-region");
    show(el);
  }

  regions.forEach(function (el) {
    el.addEventListener("click", function () { choose(el); });
    el.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        choose(el);
      }
    });
  });

  function current() {
    return regions.filter(function (el) {
      return el.getAttribute("data-region") === region.value;
    })[0] || null;
  }

  // A site or side chosen in the lists that contradicts the map's region clears the region.
  site.addEventListener("change", function () {
    var chosen = current();
    if (chosen && chosen.getAttribute("data-site") !== site.value) { region.value = ""; }
    show(current());
  });
  side.addEventListener("change", function () {
    var chosen = current();
    var laterality = chosen && chosen.getAttribute("data-laterality");
    if (laterality && side.value && laterality !== side.value) { region.value = ""; }
    show(current());
  });

  show(current());
})();
