/**
 * Building DOM without markup: every string goes in as text (textContent or a text node), never as
 * HTML, so nothing the API answers can become markup or script. Attributes are set one by one.
 */

/** Appends children: nodes as they are, strings and numbers as text, arrays flattened, nullish skipped. */
export const append = (parent, children) => {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
  return parent;
};

const setProps = (el, props) => {
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.setAttribute('class', String(value));
    else if (name === 'testid') el.setAttribute('data-testid', String(value));
    else if (name === 'text') el.textContent = String(value);
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
};

/** `h('td', { class: 'num', testid: 'x' }, 'text', child)` */
export const h = (tag, props = {}, ...children) => {
  const el = document.createElement(tag);
  setProps(el, props);
  return append(el, children);
};

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG element (sparklines); attributes are numbers or fixed names. */
export const svg = (tag, props = {}, ...children) => {
  const el = document.createElementNS(SVG, tag);
  setProps(el, props);
  return append(el, children);
};

/** Replaces an element's children. */
export const fill = (el, ...children) => {
  el.replaceChildren();
  return append(el, children);
};

export const byTestId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

/** Calls `fn` once `ms` have passed without another call; `cancel()` drops a pending call. */
export const debounce = (fn, ms) => {
  let timer;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
};
