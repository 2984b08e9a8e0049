// The Bastion server this page talks to (`bastion serve` listens on 4111). Served as is,
// not bundled: a deployment points the built app elsewhere by editing dist/config.js.
window.BASTION_URL = "http://localhost:4111";
