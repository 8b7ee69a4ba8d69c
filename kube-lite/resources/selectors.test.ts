import { expect } from 'chai';
import { matches, parseFieldSelector, parseLabelSelector } from './selectors.ts';

describe('kube-lite selectors', () => {
  const labels: Record<string, string> = { app: 'web', tier: 'front', 'example.com/x': '1' };
  const get = (k: string): string | undefined => labels[k];
  const cases: [string, boolean][] = [
    ['app=web', true],
    ['app==web', true],
    ['app!=web', false],
    ['app!=db', true],
    ['missing!=x', true],
    ['app in (web, db)', true],
    ['app notin (web,db)', false],
    ['missing notin (a)', true],
    ['tier', true],
    ['!tier', false],
    ['!missing', true],
    ['example.com/x=1,app=web', true],
    ['app=web,tier=back', false],
    ['', true],
  ];
  for (const [sel, want] of cases) {
    it(`label selector "${sel}" → ${want}`, () => {
      expect(matches(parseLabelSelector(sel), get)).to.equal(want);
    });
  }

  it('refuses malformed label selectors with a clear message', () => {
    expect(() => parseLabelSelector('a in b')).to.throw(/unable to parse requirement/);
    expect(() => parseLabelSelector('-bad=1')).to.throw(/invalid label key/);
  });

  it('parses field selectors and refuses unknown fields', () => {
    const sel = parseFieldSelector('metadata.name=a,spec.nodeName!=n1', () => true);
    expect(matches(sel, (k) => ({ 'metadata.name': 'a', 'spec.nodeName': 'n2' })[k])).to.equal(true);
    expect(matches(sel, (k) => ({ 'metadata.name': 'a', 'spec.nodeName': 'n1' })[k])).to.equal(false);
    expect(() => parseFieldSelector('spec.foo=1', (f) => f === 'metadata.name')).to.throw(/not a known field selector/);
  });
});
