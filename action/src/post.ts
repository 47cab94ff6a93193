import { runPost } from "./run-post.js";

// Entry point of action/dist/post.mjs.
process.exitCode = await runPost({ env: process.env });
