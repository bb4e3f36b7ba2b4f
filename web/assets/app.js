/**
 * The inspector page: a login view (a token typed in, or handed over in the URL fragment as
 * `#token=<t>`, kept in sessionStorage and cleared from the address bar), then views chosen by the
 * fragment: `#/feed`, `#/cluster`, `#/tree?node=&path=`, `#/entity/<kind>/<key>`, `#/hosts`, `#/alerts`,
 * `#/deadletters`. The live feed stays connected whichever view is shown. Any 401 signs out.
 */

import { AlertsView } from './alerts.js';
import { ApiError, apiGet, clearToken, getToken, onUnauthorized, setToken } from './api.js';
import { ClusterView } from './cluster.js';
import { DeadLettersView } from './deadletters.js';
import { byTestId, h } from './dom.js';
import { EntityView } from './entity.js';
import { FeedView } from './feed.js';
import { HostsView } from './hosts.js';
import { TreeView } from './tree.js';

const NAV = [
  ['feed', 'Live events'],
  ['cluster', 'Cluster'],
  ['tree', 'Tree'],
  ['hosts', 'Hosts'],
  ['alerts', 'Alerts'],
  ['deadletters', 'Dead letters'],
];

const login = byTestId('view-login');
const loginForm = byTestId('login-form');
const loginToken = byTestId('login-token');
const loginMessage = byTestId('login-message');
const shell = byTestId('app');
const main = byTestId('main');
const nodeName = byTestId('app-node');

let previousRoute = '#/tree';
let signedIn = false;

const go = (hash) => {
  if (location.hash === hash) route();
  else location.hash = hash;
};

const treeHash = (node, path) => {
  const q = new URLSearchParams();
  if (node && node !== 'self') q.set('node', node);
  if (path) q.set('path', path);
  const s = q.toString();
  return s === '' ? '#/tree' : `#/tree?${s}`;
};

const views = {
  feed: new FeedView(),
  cluster: new ClusterView({ onSelf: (self) => (nodeName.textContent = self) }),
  tree: new TreeView({
    openEntity: (kind, key) => go(`#/entity/${encodeURIComponent(kind)}/${encodeURIComponent(key)}`),
    navigate: (node, path) => go(treeHash(node, path)),
  }),
  entity: new EntityView({ back: () => go(previousRoute) }),
  hosts: new HostsView(),
  alerts: new AlertsView(),
  deadletters: new DeadLettersView(),
};
for (const view of Object.values(views)) {
  view.el.hidden = true;
  main.appendChild(view.el);
}

const nav = byTestId('nav');
for (const [name, label] of NAV)
  nav.appendChild(h('a', { href: `#/${name}`, testid: `nav-${name}`, 'data-view': name }, label));

let current = null;

const show = (name) => {
  if (current && current !== views[name]) {
    current.hide?.();
    current.el.hidden = true;
  }
  current = views[name];
  current.el.hidden = false;
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.view === name);
  current.show?.();
};

/** The view the fragment names (an unknown one is the feed). */
const route = () => {
  if (!signedIn) return;
  const hash = location.hash.replace(/^#\/?/, '');
  const [name, rest = ''] = hash.split(/[/?](.*)/s);
  if (name === 'entity') {
    const [kind = '', key = ''] = rest.split('/').map((p) => decodeURIComponent(p));
    views.entity.open(kind, key);
    show('entity');
    return;
  }
  if (name === 'tree') {
    const params = new URLSearchParams(hash.includes('?') ? hash.slice(hash.indexOf('?') + 1) : '');
    previousRoute = location.hash;
    views.tree.open(params.get('node') ?? 'self', params.get('path') ?? '');
    show('tree');
    return;
  }
  if (name !== 'entity') previousRoute = name === '' ? '#/feed' : location.hash;
  show(Object.hasOwn(views, name) ? name : 'feed');
};

const showLogin = (message) => {
  signedIn = false;
  shell.hidden = true;
  login.hidden = false;
  loginMessage.textContent = message ?? '';
  loginMessage.hidden = !message;
  loginToken.focus();
};

const signOut = (message) => {
  const wasIn = signedIn;
  clearToken();
  views.feed.stop();
  current?.hide?.();
  showLogin(message);
  if (!wasIn) loginToken.value = '';
};

/**
 * Shows the page at once, so the view's own requests go out without waiting; `/api/v1/cluster`, in
 * parallel, names the node and its members. A wrong token is refused by whichever answers first (401:
 * back to the login form with the server's message).
 */
const signIn = () => {
  signedIn = true;
  login.hidden = true;
  shell.hidden = false;
  views.feed.start();
  route();
  apiGet('/api/v1/cluster').then(
    (cluster) => {
      if (!signedIn) return;
      nodeName.textContent = cluster.self ?? '';
      views.tree.setMembers(
        (cluster.members ?? []).map((m) => m.id),
        cluster.self,
      );
    },
    (e) => {
      // A 401 has already signed out (onUnauthorized) with its message.
      if (!signedIn || (e instanceof ApiError && e.status === 401)) return;
      signOut(e instanceof ApiError ? e.message : `cannot reach the node: ${e.message}`);
    },
  );
};

/** A token handed over as `#token=<t>`: kept, and removed from the address bar and history. */
const takeFragmentToken = () => {
  const match = /^#token=([^&]*)/.exec(location.hash);
  if (!match) return false;
  setToken(decodeURIComponent(match[1]));
  history.replaceState(null, '', `${location.pathname}${location.search}#/feed`);
  return true;
};

onUnauthorized((message) => signOut(message));

loginForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = loginToken.value.trim();
  if (token === '') {
    showLogin('enter a token');
    return;
  }
  setToken(token);
  loginToken.value = '';
  signIn();
});

byTestId('logout').addEventListener('click', () => signOut('signed out'));

window.addEventListener('hashchange', () => {
  if (takeFragmentToken()) signIn();
  else route();
});

takeFragmentToken();
if (getToken()) signIn();
else showLogin(null);
