/**
 * The page shown when a page cannot be: no such run, a bad query, a store that cannot be read.
 *
 * @packageDocumentation
 */
import { tag, type Html } from './html';
import { page } from './page';

/**
 * A page saying what went wrong and what to do.
 *
 * @example
 * errorPage('No such run', 'There is no run "r9" in this store.').html;
 */
export const errorPage = (title: string, message: string): Html =>
  page({ title }, tag('h1', {}, title), tag('p', { class: 'error' }, message), tag('p', {}, tag('a', { href: '/' }, 'Back to the runs')));
