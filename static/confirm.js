// Submits the confirmation form by itself when the server allows it (data-autosubmit):
// only when the page is opened long enough after the mail was sent that it is not a
// security gateway's early fetch. People without JavaScript use the visible button.
(function () {
  var form = document.getElementById("confirm-form");
  if (!form || form.getAttribute("data-autosubmit") !== "1") return;
  var method = form.querySelector("input[name=method]");
  if (method) method.value = "auto";
  var status = document.getElementById("confirm-status");
  if (status) status.textContent = status.getAttribute("data-working") || "Confirming…";
  form.submit();
})();
