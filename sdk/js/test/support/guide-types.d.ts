// The guide's TypeScript is written against the DOM library, where Response.json() answers
// Promise<any>; Node's types say Promise<unknown>. The tests type the guide's code as the guide
// was written, so that it compiles verbatim.
declare global {
  interface Response {
    json(): Promise<any>;
  }
}

export {};
