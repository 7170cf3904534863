import { render } from "preact";
import { App } from "./app.jsx";
import { initSession } from "./session.js";
import "./style.css";

initSession().then(() => {
  const root = document.getElementById("app");
  root.textContent = ""; // drop the "Loading" placeholder the static page shows
  render(<App />, root);
});
