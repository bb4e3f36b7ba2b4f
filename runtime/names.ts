/**
 * nact accepts actor names of `[a-z0-9-$_.+!*'(),]` only. Child ids and entity keys are freer
 * (`c/1`, `web-12:161`, `payments@nginx`), so each other character becomes `$` and four hex digits
 * of its UTF-16 code unit (`$` itself included). Injective, so two ids never share a nact name.
 */
const SAFE = /^[a-z0-9\-_.+!*'(),]+$/i;

export const nactName = (id: string): string => {
  if (SAFE.test(id)) return id;
  let out = '';
  for (let i = 0; i < id.length; i++) {
    const ch = id[i]!;
    out += SAFE.test(ch) ? ch : `$${id.charCodeAt(i).toString(16).padStart(4, '0')}`;
  }
  return out;
};
