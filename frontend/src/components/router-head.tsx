import { component$ } from "@builder.io/qwik";
import { useDocumentHead } from "@builder.io/qwik-city";

/** The document <head> contents: title and the basics (no per-route meta yet). */
export const RouterHead = component$(() => {
  const head = useDocumentHead();
  return (
    <>
      <title>{head.title}</title>
      <meta name="viewport" content="width=device-width, initial-scale=1.0" />
      <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
    </>
  );
});
