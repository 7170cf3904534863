import { render } from "preact";
import { App } from "./app.jsx";
import { initSession } from "./session.js";
import "./style.css";

initSession().then(() => render(<App />, document.getElementById("app")));
