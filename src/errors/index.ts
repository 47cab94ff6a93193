export { type ErrorCatalogueEntry, type ErrorCode, errorCatalogue } from "./catalogue.js";
export { type ErrorBody, type ErrorResponse, toErrorResponse } from "./error-response.js";
export { isTollgateError, TollgateError } from "./tollgate-error.js";
