export { type WhoamiAnswer, whoamiFeature, whoamiPath } from "./whoami-feature.js";
